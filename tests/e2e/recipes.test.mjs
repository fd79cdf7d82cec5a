// Recipes end to end: Deputy as a process runs the shipped example recipes against local
// stand-ins for Salesforce and ServiceNow that accept only tokens the real authorization
// server (oidc-provider) says are active, and record who acted.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { FetchBrowser } from '../support/auth-server.mjs';
import { startStack, findButton, connectLink } from '../support/stack.mjs';

const TEAM_OPPORTUNITY = `command: create team opportunity
description: Create a Salesforce opportunity with the team's integration account
app: salesforce
verify_user_access_at_runtime: false
parameters:
  - name: name
  - name: amount
    type: number
  - name: close_date
    type: date
steps:
  - id: create
    http:
      method: POST
      path: /sobjects/Opportunity
      body: {Name: "{{params.name}}", Amount: "{{params.amount}}", CloseDate: "{{params.close_date}}", StageName: Prospecting}
      keep: {id: /id}
reply:
  success: "Created team opportunity *{{params.name}}*: \`{{steps.create.id}}\`"
`;

let stack;
let slack;
let apps;

before(async () => {
  stack = await startStack({ withApps: true, recipes: { 'team-opportunity.yaml': TEAM_OPPORTUNITY }, env: { DEPUTY_ADMINS: 'U0ADMIN' } });
  ({ slack, apps } = stack);
});

after(async () => {
  await stack?.stop();
});

beforeEach(() => slack.clear());

/** What Deputy posted to the response_url of one slash command, in order. */
function responsesTo(sent) {
  return slack.calls.filter((c) => c.method === 'response_url' && c.id === sent.responseId);
}

async function responseTo(sent, pattern, timeoutMs = 8000) {
  return slack.waitForCall((c) => c.method === 'response_url' && c.id === sent.responseId && pattern.test(JSON.stringify(c.body)), { timeoutMs });
}

async function dmTo(user, pattern, timeoutMs = 8000) {
  return slack.waitForCall((c) => c.method === 'chat.postMessage' && !c.failed && c.body.channel === user && pattern.test(JSON.stringify(c.body)), { timeoutMs });
}

async function login(url, account) {
  const browser = new FetchBrowser();
  const back = await browser.login(url, { login: account });
  const page = await browser.request(back);
  assert.equal(page.status, 200, page.text);
  return page;
}

/** Runs "create opportunity" for a person who has not connected: prompt, login, job resumes. */
async function createOpportunityConnectingFirst(user, account, name) {
  const sent = await slack.sendSlashCommand({ user, text: `create opportunity "${name}" 5000 2026-12-31` });
  assert.equal(sent.status, 200);
  const prompt = await responseTo(sent, /connect your Salesforce account/);
  assert.match(prompt.body.text, /To run create opportunity connect your Salesforce account/);
  const button = findButton(prompt.body.blocks, (e) => e.url);
  assert.equal(button.text.text, 'Connect Salesforce');
  assert.equal(apps.recordsOf('Opportunity').filter((r) => r.fields.Name === name).length, 0, 'nothing is created before the login');
  await login(button.url, account);
  // Nobody types the command again: the parked job finishes by itself.
  const done = await responseTo(sent, /Created opportunity/);
  return { sent, done };
}

test('two people create opportunities; the app records each of them as the creator', async () => {
  const alice = await createOpportunityConnectingFirst('U0ALICE', 'alice', 'Acme renewal');
  assert.match(alice.done.body.text, /Created opportunity \*Acme renewal\* \(5000, closes 2026-12-31, Prospecting\): `006[0-9A-F]+`/);
  assert.match(JSON.stringify(alice.done.body.blocks), /Acted in Salesforce as you \(alice@example\.com\)/);
  const bob = await createOpportunityConnectingFirst('U0BOB', 'bob', 'Globex expansion');
  assert.match(bob.done.body.text, /Globex expansion/);

  const [acme] = apps.recordsOf('Opportunity').filter((r) => r.fields.Name === 'Acme renewal');
  const [globex] = apps.recordsOf('Opportunity').filter((r) => r.fields.Name === 'Globex expansion');
  assert.equal(acme.createdBy, 'alice');
  assert.equal(globex.createdBy, 'bob');
  assert.deepEqual(acme.fields, { Name: 'Acme renewal', Amount: 5000, CloseDate: '2026-12-31', StageName: 'Prospecting' });

  // Once connected, the next run acts at once, still as Alice.
  const again = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create opportunity Initech 120.5 2027-01-15 stage=qualification' });
  await responseTo(again, /Created opportunity \*Initech\*/);
  const [initech] = apps.recordsOf('Opportunity').filter((r) => r.fields.Name === 'Initech');
  assert.equal(initech.createdBy, 'alice');
  assert.equal(initech.fields.Amount, 120.5);
  assert.equal(initech.fields.StageName, 'Qualification');
  assert.equal(responsesTo(again).length, 1, 'no Connect prompt for a connected person');
});

test('the same recipe with verify_user_access_at_runtime: false acts as the shared account and says so', async () => {
  const early = await slack.sendSlashCommand({ user: 'U0CAROL', text: 'create team opportunity Hooli 10 2026-12-01' });
  await responseTo(early, /no shared Salesforce account is connected yet/);

  const { url } = await connectLink(slack, 'U0ADMIN', 'shared salesforce');
  await login(url, 'shared');
  slack.clear();
  const sent = await slack.sendSlashCommand({ user: 'U0CAROL', text: 'create team opportunity Hooli 10 2026-12-01' });
  const done = await responseTo(sent, /Created team opportunity \*Hooli\*/);
  assert.match(JSON.stringify(done.body.blocks), /Acted in Salesforce as the shared account integration@example\.com/);
  const hooli = apps.recordsOf('Opportunity').filter((r) => r.fields.Name === 'Hooli');
  assert.equal(hooli.length, 1);
  assert.equal(hooli[0].createdBy, 'shared');
});

test('missing or bad parameters get the usage, and nothing runs', async () => {
  const before = apps.calls.length;
  const bad = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create opportunity Acme lots 2026-12-31' });
  const reply = await responseTo(bad, /amount/);
  assert.match(reply.body.text, /\*amount\* must be a number like 1250 or 1250\.50: .* \(got “lots”\)/);
  assert.match(JSON.stringify(reply.body.blocks), /Usage: `create opportunity &lt;name&gt; &lt;amount&gt; &lt;close_date&gt; \[stage=Prospecting\|/);
  const missing = await slack.sendAppMention({ user: 'U0ALICE', text: '<@U0DEPUTYBOT> create opportunity Acme' });
  assert.equal(missing.status, 200);
  const ephemeral = await slack.waitForCall((c) => c.method === 'chat.postEphemeral' && c.body.user === 'U0ALICE');
  assert.match(ephemeral.body.text, /\*amount\* is missing/);
  assert.equal(apps.calls.length, before, 'the app was not called');
});

test('an approval is decided by the approver only, and acts in the app as the approver', async () => {
  apps.addApproval({ number: 'RITM0010001', approver: 'bob' });
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'approve request RITM0010001 <@U0BOB|bob>' });
  await responseTo(sent, /I asked <@U0BOB> to approve/);
  const ask = await dmTo('U0BOB', /asks for your approval/);
  assert.match(ask.body.text, /Approval requested by <@U0ALICE>: Approve ServiceNow request \*RITM0010001\*\?/);
  const approve = findButton(ask.body.blocks, (e) => e.action_id === 'job.approve');
  const reject = findButton(ask.body.blocks, (e) => e.action_id === 'job.reject');
  assert.ok(approve && reject, JSON.stringify(ask.body.blocks));
  assert.ok(reject.confirm, 'Reject asks for confirmation');

  // Carol forges Bob's click from her own DM with Deputy: refused, and the request still waits for Bob.
  await slack.sendBlockAction({ user: 'U0CAROL', actionId: 'job.approve', value: approve.value, channel: slack.dmChannelOf('U0CAROL') });
  const refused = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.body.channel === slack.dmChannelOf('U0CAROL'));
  assert.match(refused.body.text, /Only the person asked to approve this request can decide it/);
  assert.equal(apps.recordsOf('sysapproval_approver')[0].fields.state, 'requested');

  // Bob approves in his DM; the request message is updated in place. He has no ServiceNow
  // connection yet, so he is asked to connect first.
  await slack.sendBlockAction({ user: 'U0BOB', actionId: 'job.approve', value: approve.value, channel: slack.dmChannelOf('U0BOB'), messageTs: ask.response.ts });
  const updated = await slack.waitForCall((c) => c.method === 'chat.update');
  assert.equal(updated.body.ts, ask.response.ts);
  assert.match(updated.body.text, /You approved this request/);
  const prompt = await dmTo('U0BOB', /connect your ServiceNow account/);
  await login(findButton(prompt.body.blocks, (e) => e.url).url, 'bob');

  const done = await responseTo(sent, /is approved in ServiceNow by <@U0BOB>/);
  assert.match(JSON.stringify(done.body.blocks), /Acted in ServiceNow as <@U0BOB> \(bob@example\.com\)/);
  const record = apps.recordsOf('sysapproval_approver')[0];
  assert.equal(record.fields.state, 'approved');
  assert.equal(record.updatedBy, 'bob', 'ServiceNow saw the approver act, not the requester');
  assert.ok(apps.calls.filter((c) => c.path.startsWith('/api/now/')).every((c) => c.account === 'bob'));

  // A second click by Bob changes nothing.
  slack.clear();
  await slack.sendBlockAction({ user: 'U0BOB', actionId: 'job.approve', value: approve.value, channel: slack.dmChannelOf('U0BOB') });
  const again = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.body.channel === slack.dmChannelOf('U0BOB'));
  assert.match(again.body.text, /already been decided; nothing changed/);
});

test('a rejected request is cancelled and the requester is told', async () => {
  apps.addApproval({ number: 'RITM0010002', approver: 'bob' });
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'approve request RITM0010002 <@U0BOB>' });
  const ask = await dmTo('U0BOB', /RITM0010002/);
  const reject = findButton(ask.body.blocks, (e) => e.action_id === 'job.reject');
  await slack.sendBlockAction({ user: 'U0BOB', actionId: 'job.reject', value: reject.value, channel: slack.dmChannelOf('U0BOB') });
  await responseTo(sent, /<@U0BOB> rejected your request \*approve request\*/);
  assert.equal(apps.recordsOf('sysapproval_approver').find((r) => r.number === 'RITM0010002').fields.state, 'requested');
});

test('an app error is reported to the person, with the app\'s own words', async () => {
  apps.failNext({ status: 400, body: [{ errorCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION', message: 'Close date must be in the future' }] });
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create opportunity Umbrella 1 2026-12-31' });
  const failed = await responseTo(sent, /could not create/);
  assert.match(failed.body.text, /I could not create the opportunity \*Umbrella\*\.\nSalesforce said: Close date must be in the future/);
});

test('Slack down while a job answers: the answer is kept and arrives once Slack is back; the work ran once', async () => {
  // The Web API client tries each call four times, and all four fail: the answer can only
  // arrive from the queue.
  slack.failNext('response_url', { status: 500, times: 4 });
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create opportunity "Kept answer" 7 2026-12-31' });
  assert.equal(sent.status, 200);
  const answered = (c) => c.method === 'response_url' && !c.failed && c.id === sent.responseId && /Kept answer/.test(JSON.stringify(c.body));
  const done = await slack.waitForCall(answered, { timeoutMs: 20000 });
  assert.match(done.body.text, /Created opportunity \*Kept answer\*/);
  assert.equal(slack.calls.filter((c) => c.method === 'response_url' && c.failed && c.id === sent.responseId).length, 4, 'Slack was down for the first try');
  assert.equal(slack.calls.filter((c) => c.method === 'chat.postMessage' && /Kept answer/.test(JSON.stringify(c.body))).length, 0,
    'no second copy by direct message: a 500 may still have reached Slack');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(slack.calls.filter(answered).length, 1, 'answered once');
  assert.equal(apps.recordsOf('Opportunity').filter((r) => r.fields.Name === 'Kept answer').length, 1, 'created once');
  assert.match(stack.deputy.logs, /it is kept and will be sent again/);
});

test('a refused login cancels the job it was for, so running the command again runs it once', async () => {
  const first = await slack.sendSlashCommand({ user: 'U0CAROL', text: 'create opportunity "Refused first" 3 2026-12-31' });
  const prompt = await responseTo(first, /connect your Salesforce account/);
  const browser = new FetchBrowser();
  const back = await browser.login(findButton(prompt.body.blocks, (e) => e.url).url, { login: 'carol', deny: true });
  const page = await browser.request(back);
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /Nothing was connected/);
  await dmTo('U0CAROL', /You did not allow Deputy to use your Salesforce account, so nothing was connected\. I cancelled \*create opportunity\*/);

  const again = await slack.sendSlashCommand({ user: 'U0CAROL', text: 'create opportunity "Second go" 3 2026-12-31' });
  const secondPrompt = await responseTo(again, /connect your Salesforce account/);
  await login(findButton(secondPrompt.body.blocks, (e) => e.url).url, 'carol');
  await responseTo(again, /Created opportunity \*Second go\*/);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(apps.recordsOf('Opportunity').filter((r) => r.fields.Name === 'Refused first').length, 0, 'the refused job never ran');
  assert.equal(apps.recordsOf('Opportunity').filter((r) => r.fields.Name === 'Second go').length, 1);
});
