// Seeing and disconnecting personal connections in Slack, admin offboarding and the audit
// log, in chat and on the command line, against the real authorization server.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { FetchBrowser } from '../support/auth-server.mjs';
import { DEPUTY_BIN } from '../support/deputy.mjs';
import { startStack, findButton, connectLink, CLIENT_SECRET } from '../support/stack.mjs';

// Enough extra apps for one person to need two pages.
const MANY = Array.from({ length: 22 }, (_, i) => `tool${String(i).padStart(2, '0')}`);

let stack;
let slack;
let auth;

before(async () => {
  const extraApps = MANY.map((id) => `  ${id}:
    type: oauth2
    display_name: Tool ${id.slice(4)}
    issuer: \${issuer}
    client_id: deputy
    scopes: [openid, email, offline_access]
`).join('');
  const env = { DEPUTY_ADMINS: 'U0ADMIN' };
  for (const id of MANY) env[`DEPUTY_APP_${id.toUpperCase()}_CLIENT_SECRET`] = CLIENT_SECRET;
  stack = await startStack({ withApps: true, extraApps, env });
  ({ slack, auth } = stack);
});

after(async () => {
  await stack?.stop();
});

beforeEach(() => slack.clear());

async function connect(user, account, app) {
  const { url } = await connectLink(slack, user, app);
  const browser = new FetchBrowser();
  const from = slack.seq;
  const page = await browser.request(await browser.login(url, { login: account }));
  assert.equal(page.status, 200, page.text);
  // The "Connected to …" DM leaves after the page: waited for, so it is not taken for the
  // answer to what the test sends next.
  await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.seq >= from && c.body.channel === user && /^Connected to /.test(c.body.text));
}

async function dm(user, text) {
  const sent = await slack.sendDirectMessage({ user, text });
  return slack.answerTo(sent);
}

function cli(...args) {
  return execFileSync(DEPUTY_BIN, ['admin', ...args, '--config', stack.deputy.config], {
    cwd: stack.deputy.dir,
    env: stack.deputy.cliEnv(),
  }).toString();
}

const rows = (blocks) => blocks.filter((b) => b.accessory?.action_id === 'connection.disconnect');

test('all four ways in show the caller\'s list; empty says how to connect and offers the apps recipes use', async () => {
  const viaDm = await dm('U0CAROL', 'connections');
  assert.match(JSON.stringify(viaDm.body.blocks), /You have no personal accounts connected/);
  const offered = viaDm.body.blocks.flatMap((b) => b.elements ?? []).filter((e) => e.url).map((e) => e.text.text).sort();
  assert.deepEqual(offered, ['Connect Box', 'Connect Salesforce', 'Connect ServiceNow'], 'the apps the example recipes use');

  await slack.sendAppMention({ user: 'U0CAROL', text: '<@U0DEPUTYBOT> connections' });
  const mention = await slack.waitForCall((c) => c.method === 'chat.postEphemeral' && c.body.user === 'U0CAROL');
  assert.match(JSON.stringify(mention.body.blocks), /Personal accounts/);

  slack.clear();
  await slack.sendAppMention({ user: 'U0CAROL', text: '<@U0DEPUTYBOT> help' });
  const help = await slack.waitForCall((c) => c.method === 'chat.postEphemeral' && c.body.user === 'U0CAROL');
  const button = findButton(help.body.blocks, (e) => e.action_id === 'view.connections');
  assert.equal(button.text.text, 'Personal accounts');
  const responseUrl = `${slack.baseUrl}/response/carol-list`;
  await slack.sendBlockAction({ user: 'U0CAROL', actionId: button.action_id, value: button.value, isEphemeral: true, responseUrl });
  const list = await slack.waitForCall((c) => c.method === 'response_url' && c.id === 'carol-list');
  assert.match(JSON.stringify(list.body.blocks), /You have no personal accounts connected/);
  assert.equal(slack.calls.filter((c) => c.method === 'chat.postMessage').length, 0, 'nothing public in the channel');
});

test('a full list: app, identity, since, last used, status and Disconnect per row, no Connect for connected apps', async () => {
  for (const app of ['salesforce', 'servicenow', 'box']) await connect('U0ALICE', 'alice', app);
  const reply = await dm('U0ALICE', 'connections');
  const listed = rows(reply.body.blocks);
  assert.equal(listed.length, 3);
  for (const row of listed) {
    assert.match(row.text.text, /^\*(Salesforce|ServiceNow|Box)\* — alice@example\.com\nConnected <!date\^\d+\^[^|]+\|\d+> · last used (never|<!date[^>]+>) · active$/);
    assert.ok(row.accessory.confirm, 'Disconnect asks for confirmation');
  }
  assert.equal(reply.body.blocks.flatMap((b) => b.elements ?? []).filter((e) => e.url).length, 0);
});

test('a forged disconnect of someone else\'s connection is refused and audited', async () => {
  const reply = await dm('U0ALICE', 'connections');
  const aliceConnection = rows(reply.body.blocks)[0].accessory.value;
  slack.clear();
  await slack.sendBlockAction({ user: 'U0CAROL', actionId: 'connection.disconnect', value: aliceConnection, channel: slack.dmChannelOf('U0CAROL') });
  const refused = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.body.channel === slack.dmChannelOf('U0CAROL'));
  assert.match(refused.body.text, /not yours/);
  assert.equal(rows((await dm('U0ALICE', 'connections')).body.blocks).length, 3, 'Alice keeps all three');
  const audit = await dm('U0ADMIN', 'admin audit <@U0CAROL>');
  assert.match(JSON.stringify(audit.body.blocks), /\*disconnect_refused\* · by <@U0CAROL>/);
});

test('admin commands: only admins; offboarding a person with three connections revokes all of them', async () => {
  const notAdmin = await dm('U0BOB', 'admin offboard <@U0ALICE>');
  assert.match(notAdmin.body.text, /Only Deputy admins/);
  assert.equal(rows((await dm('U0ALICE', 'connections')).body.blocks).length, 3);

  const listed = await dm('U0ADMIN', 'admin connections <@U0ALICE>');
  const text = JSON.stringify(listed.body.blocks);
  assert.match(text, /3 connection\(s\) of <@U0ALICE>/);
  assert.match(text, /\*Salesforce\* · alice@example\.com · <@U0ALICE> · personal · active/);
  assert.match(cli('connections', '--user', 'U0ALICE'), /3 connection\(s\)/);

  // A login Alice has in flight when she is offboarded must not connect her again afterwards.
  const browser = new FetchBrowser();
  const inFlight = await browser.login((await connectLink(slack, 'U0ALICE', 'demo')).url, { login: 'alice' });

  const revokedBefore = auth.revocations.length;
  // Offboarding cannot be undone: the admin confirms it, and only an admin's click counts.
  const asked = await dm('U0ADMIN', 'admin offboard <@U0ALICE>');
  assert.match(JSON.stringify(asked.body.blocks), /Offboarding revokes and deletes every login <@U0ALICE> holds: 3 connection\(s\)/);
  const confirm = findButton(asked.body.blocks, (e) => e.action_id === 'admin.offboard');
  assert.ok(confirm?.confirm, 'a button with Slack\'s are-you-sure dialog');
  assert.equal(auth.revocations.length, revokedBefore, 'nothing revoked before the confirmation');
  assert.equal(rows((await dm('U0ALICE', 'connections')).body.blocks).length, 3);
  await slack.sendBlockAction({ user: 'U0BOB', actionId: confirm.action_id, value: confirm.value, channel: slack.dmChannelOf('U0BOB') });
  const refused = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.body.channel === slack.dmChannelOf('U0BOB') && /Only Deputy admins can offboard/.test(c.body.text ?? ''));
  assert.match(refused.body.text, /Only Deputy admins can offboard people/);
  assert.equal(auth.revocations.length, revokedBefore, 'a forged click from someone else revokes nothing');
  await slack.sendBlockAction({ user: 'U0ADMIN', actionId: confirm.action_id, value: confirm.value, channel: slack.dmChannelOf('U0ADMIN'), messageTs: asked.response.ts });
  const offboarded = await slack.waitForCall((c) => c.method === 'chat.update' && /Revoked and deleted/.test(c.body.text ?? ''));
  assert.match(offboarded.body.text, /Revoked and deleted 3 connection\(s\) of <@U0ALICE>: .*Salesforce \(alice@example\.com\).*\. Offboarded by <@U0ADMIN>/);
  assert.ok(auth.revocations.length - revokedBefore >= 3, 'each grant was revoked at the authorization server');
  const late = await browser.request(inFlight);
  assert.equal(late.status, 400, late.text);
  assert.match(late.text, /already completed or cancelled/);
  assert.match(JSON.stringify((await dm('U0ALICE', 'connections')).body.blocks), /You have no personal accounts connected/);
  assert.match(cli('audit', '--user', 'U0ALICE', '--limit', '10'), /revoked_by_admin · by U0ADMIN · as U0ALICE · box/);
});

test('the audit log answers "who did this, as whom" for connect → act → disconnect, in chat and on the CLI', async () => {
  await connect('U0BOB', 'bob', 'salesforce');
  const sent = await slack.sendSlashCommand({ user: 'U0BOB', text: 'create opportunity "Audit trail" 7 2026-12-31' });
  await slack.waitForCall((c) => c.method === 'response_url' && c.id === sent.responseId && /Created opportunity/.test(c.body.text));
  const list = await dm('U0BOB', 'connections');
  const disconnect = rows(list.body.blocks)[0].accessory;
  await slack.sendBlockAction({ user: 'U0BOB', actionId: disconnect.action_id, value: disconnect.value, channel: slack.dmChannelOf('U0BOB'), messageTs: list.response.ts });
  await slack.waitForCall((c) => c.method === 'chat.update');

  const out = cli('audit', '--user', 'U0BOB', '--limit', '3');
  const lines = out.trim().split('\n').reverse();  // oldest first
  assert.match(lines[0], /connected · by U0BOB · salesforce · bob@example\.com/);
  assert.match(lines[1], /action · by U0BOB · salesforce · create opportunity · create: POST \/sobjects\/Opportunity -> 201 as bob@example\.com/);
  assert.match(lines[2], /disconnected · by U0BOB · salesforce · bob@example\.com/);
  assert.doesNotMatch(out + cli('connections'), /eyJ|Bearer|access_token/i, 'no token material in admin output');
  const chat = await dm('U0ADMIN', 'admin audit <@U0BOB> 3');
  assert.match(JSON.stringify(chat.body.blocks), /\*action\* · by <@U0BOB> · salesforce · create opportunity/);
  // A count past any integer type still gets an answer: as many lines as are shown at most.
  const huge = await dm('U0ADMIN', 'admin audit <@U0BOB> 99999999999999999999999');
  assert.match(JSON.stringify(huge.body.blocks), /\*disconnected\* · by <@U0BOB> · salesforce/);
});

test('one person with many connections gets pages within Slack\'s limits', async () => {
  for (const app of MANY) await connect('U0CAROL', 'carol', app);
  const first = await dm('U0CAROL', 'connections');
  assert.ok(first.body.blocks.length <= 50);
  assert.equal(rows(first.body.blocks).length, 20);
  assert.match(JSON.stringify(first.body.blocks), /Page 1 of 2 · 22 accounts/);
  const next = findButton(first.body.blocks, (e) => e.text.text === 'Next');
  slack.clear();
  await slack.sendBlockAction({ user: 'U0CAROL', actionId: next.action_id, value: next.value, channel: slack.dmChannelOf('U0CAROL'), messageTs: first.response.ts });
  const second = await slack.waitForCall((c) => c.method === 'chat.update' && !c.failed);
  assert.equal(second.body.ts, first.response.ts, 'the same message turns the page');
  assert.equal(rows(second.body.blocks).length, 2);
  assert.ok(findButton(second.body.blocks, (e) => e.text.text === 'Previous'));
  assert.equal(findButton(second.body.blocks, (e) => e.text.text === 'Next'), undefined);
});
