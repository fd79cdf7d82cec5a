// Text as people typed it: Slack escapes & < > and sends mentions and links as <…> forms
// (the Slack fake does the same through `typed:`); what reaches the app is what was typed,
// and what Deputy shows in Slack is escaped again.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { FetchBrowser } from '../support/auth-server.mjs';
import { startStack, findButton } from '../support/stack.mjs';

const LINK_OPPORTUNITY = `command: link opportunity
description: Create a Salesforce opportunity with a web site
app: salesforce
verify_user_access_at_runtime: true
parameters:
  - name: name
  - name: link
    type: url
steps:
  - id: create
    http:
      method: POST
      path: /sobjects/Opportunity
      body: {Name: "{{params.name}}", Website: "{{params.link}}", CloseDate: "2026-12-31", StageName: Prospecting}
      keep: {id: /id}
reply:
  success: "Linked *{{params.name}}* to {{params.link}}"
`;

const TYPED = 'Tom & Jerry <b> “quoted” 東京 :tada:';

let stack;
let slack;
let apps;

before(async () => {
  stack = await startStack({ withApps: true, recipes: { 'link-opportunity.yaml': LINK_OPPORTUNITY } });
  ({ slack, apps } = stack);
  // Alice connects Salesforce once, through the prompt of her first command.
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', typed: 'create opportunity Warmup 1 2026-12-31' });
  const prompt = await responseTo(sent, /connect your Salesforce account/);
  const browser = new FetchBrowser();
  const page = await browser.request(await browser.login(findButton(prompt.body.blocks, (e) => e.url).url, { login: 'alice' }));
  assert.equal(page.status, 200, page.text);
  await responseTo(sent, /Created opportunity \*Warmup\*/);
});

after(async () => {
  await stack?.stop();
});

beforeEach(() => slack.clear());

function responseTo(sent, pattern, timeoutMs = 8000) {
  return slack.waitForCall((c) => c.method === 'response_url' && c.id === sent.responseId && pattern.test(JSON.stringify(c.body)), { timeoutMs });
}

function opportunity(name) {
  return apps.recordsOf('Opportunity').filter((r) => r.fields.Name === name);
}

test('a slash command typed with & < > quotes and non-Latin letters reaches the app exactly as typed', async () => {
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', typed: `create opportunity "${TYPED}" 5000 2026-12-31` });
  assert.match(slack.slackText(`"${TYPED}"`), /Tom &amp; Jerry &lt;b&gt;/, 'the fake escapes as Slack does');
  const done = await responseTo(sent, /Created opportunity/);
  const [record] = opportunity(TYPED);
  assert.ok(record, `no opportunity named ${TYPED}: ${JSON.stringify(apps.recordsOf('Opportunity').map((r) => r.fields.Name))}`);
  assert.equal(record.createdBy, 'alice');
  // Shown in Slack escaped once, so it reads as typed there too.
  assert.match(done.body.text, /Created opportunity \*Tom &amp; Jerry &lt;b&gt; “quoted” 東京 :tada:\*/);
  assert.doesNotMatch(JSON.stringify(done.body), /<b>|&amp;amp;/);
});

test('a DM and an @mention are read as typed too; curly quotes group words', async () => {
  const dm = await slack.sendDirectMessage({ user: 'U0ALICE', typed: 'create opportunity “Smith & Sons <x>” 7 2026-12-31' });
  const dmAnswer = await slack.answerTo(dm, { timeoutMs: 8000 });
  assert.match(dmAnswer.body.text, /Created opportunity \*Smith &amp; Sons &lt;x&gt;\*/);
  assert.equal(opportunity('Smith & Sons <x>').length, 1);

  await slack.sendAppMention({ user: 'U0ALICE', typed: 'create opportunity "R&D > ops" 8 2026-12-31' });
  const ephemeral = await slack.waitForCall((c) => c.method === 'chat.postEphemeral' && /R&amp;D &gt; ops/.test(c.body.text), { timeoutMs: 8000 });
  assert.equal(ephemeral.body.user, 'U0ALICE');
  assert.equal(opportunity('R&D > ops').length, 1);
});

test('a link gives its label to a text parameter and its address to a url parameter', async () => {
  // A formatted link as Slack sends it, & in the address escaped like the rest.
  const link = '<https://example.com/deal?a=1&amp;b=2|Deal &amp; docs>';
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', text: `link opportunity ${link} ${link}` });
  await responseTo(sent, /Linked/);
  const [record] = opportunity('Deal & docs');
  assert.ok(record, JSON.stringify(apps.recordsOf('Opportunity').map((r) => r.fields)));
  assert.equal(record.fields.Website, 'https://example.com/deal?a=1&b=2');

  const typedUrl = await slack.sendSlashCommand({ user: 'U0ALICE', typed: 'link opportunity Plain https://example.com/x?y=1&z=2' });
  await responseTo(typedUrl, /Linked \*Plain\*/);
  assert.equal(opportunity('Plain')[0].fields.Website, 'https://example.com/x?y=1&z=2');

  const notALink = await slack.sendSlashCommand({ user: 'U0ALICE', typed: 'link opportunity Nope example' });
  await responseTo(notALink, /must be a web address/);
  assert.equal(opportunity('Nope').length, 0);
});

test('a mention fills a user parameter; a mention typed as text does not name anyone', async () => {
  apps.addApproval({ number: 'RITM0020001', approver: 'bob' });
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', typed: 'approve request RITM0020001 @bob' });
  assert.match(slack.slackText('@bob', { labels: true }), /^<@U0BOB\|bob>$/);
  await responseTo(sent, /I asked <@U0BOB> to approve/);
  await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.body.channel === 'U0BOB' && /RITM0020001/.test(c.body.text));

  // Someone types the wire form by hand to make Carol the approver: Slack escapes it, and it stays text.
  slack.clear();
  const forged = await slack.sendSlashCommand({ user: 'U0ALICE', typed: 'approve request RITM0020001 <@U0CAROL>' });
  const refused = await responseTo(forged, /must name a person/);
  assert.match(refused.body.text, /\*approver\* must name a person with @ \(got “&lt;@U0CAROL&gt;”\)/);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(slack.calls.filter((c) => c.method === 'chat.postMessage' && c.body.channel === 'U0CAROL').length, 0, 'Carol was not asked');
});

test('an unknown command is echoed as typed, escaped once', async () => {
  const dm = await slack.sendDirectMessage({ user: 'U0BOB', typed: 'frobnicate A & B <c>' });
  const answer = await slack.answerTo(dm);
  assert.match(JSON.stringify(answer.body.blocks), /I don't know the command \*frobnicate A &amp; B &lt;c&gt;\*/);
  assert.doesNotMatch(JSON.stringify(answer.body), /&amp;amp;|&amp;lt;/);
});

test('a money amount reaches the app with every digit typed, and a day that does not exist is refused naming its parameter', async () => {
  const amount = '12345678901234567890.12';
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', typed: `create opportunity Exact ${amount} 2028-02-29` });
  await responseTo(sent, /Created opportunity \*Exact\*/);
  const [record] = opportunity('Exact');
  assert.ok(record, 'created');
  assert.match(record.raw, new RegExp(`"Amount":${amount.replace('.', '\\.')}[,}]`), `sent as typed, not rounded through a double: ${record.raw}`);

  const wrongDay = await slack.sendSlashCommand({ user: 'U0ALICE', typed: 'create opportunity Leap 5000 2026-02-30' });
  const refused = await responseTo(wrongDay, /close_date/);
  assert.match(refused.body.text, /\*close_date\* must be a day that exists: February 2026 has 28 days/);
  assert.match(JSON.stringify(refused.body.blocks), /Usage: `create opportunity/);
  for (const [typed, why] of [['1e400', /\*amount\* must be a number like 1250/], ['-5', /\*amount\* must be at least 0/], ['10.125', /\*amount\* takes at most 2 decimal places/]]) {
    const bad = await slack.sendSlashCommand({ user: 'U0ALICE', typed: `create opportunity Bad ${typed} 2026-12-31` });
    assert.match((await responseTo(bad, /amount/)).body.text, why);
  }
  const unknown = await slack.sendSlashCommand({ user: 'U0ALICE', typed: 'create opportunity Colour 5000 2026-12-31 colour=red' });
  assert.match((await responseTo(unknown, /colour/)).body.text, /\*colour\* is not an option of \*create opportunity\*/);
  assert.equal(opportunity('Leap').length + opportunity('Bad').length + opportunity('Colour').length, 0, 'nothing refused reached the app');
});
