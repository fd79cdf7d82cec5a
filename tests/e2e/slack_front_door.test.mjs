// Slack's front door end to end: the real deputy binary, the Slack fake signing and
// sending requests exactly as Slack does, and the fake Web API receiving the answers.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { SlackFake } from '../support/slack-fake.mjs';
import { Deputy, eventually, sleep } from '../support/deputy.mjs';

const SIGNING_SECRET = 'e2e-signing-secret-0123456789abcdef';
const BOT_TOKEN = 'xoxb-e2e-fake-bot-token';

let slack;
let deputy;

before(async () => {
  slack = new SlackFake({ signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN });
  await slack.start();
  deputy = new Deputy({
    configYaml: 'apps:\n  salesforce:\n    type: salesforce\n    client_id: front-door-test\n',
    env: {
      DEPUTY_SLACK_SIGNING_SECRET: SIGNING_SECRET,
      DEPUTY_SLACK_BOT_TOKEN: BOT_TOKEN,
      DEPUTY_SLACK_API_URL: slack.apiUrl,
      DEPUTY_RECIPES: new URL('../fixtures/recipes/', import.meta.url).pathname,
    },
  });
  await deputy.start();
  slack.deputyUrl = deputy.url;
});

after(async () => {
  await deputy?.stop();
  deputy?.cleanup();
  await slack?.stop();
});

beforeEach(() => slack.clear());

function blockTexts(blocks) {
  return JSON.stringify(blocks);
}

function personalAccountsButton(blocks) {
  for (const b of blocks) {
    for (const e of b.elements ?? []) if (e.type === 'button' && e.action_id === 'view.connections') return e;
    if (b.accessory?.action_id === 'view.connections') return b.accessory;
  }
  return undefined;
}

test('answers the url_verification challenge', async () => {
  const r = await slack.sendUrlVerification('3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P' });
});

test('forged, altered and stale requests get 401 and do nothing', async () => {
  const accepted = await deputy.metric('deputy_slack_requests_total', { outcome: 'accepted' });
  const body = new URLSearchParams({
    token: 'x', team_id: 'T0DEPUTY', channel_id: 'C0GENERAL', user_id: 'U0ALICE',
    command: '/deputy', text: 'help', response_url: `${slack.apiUrl.replace('/api', '')}/response/forged`,
    trigger_id: '1.2.forged',
  }).toString();
  const now = Math.floor(Date.now() / 1000);
  const good = slack.sign(now, body);
  const cases = [
    { name: 'wrong secret', timestamp: now, signature: slack.sign(now, body, 'not-the-secret') },
    { name: 'altered body', timestamp: now, signature: good, body: body.replace('help', 'hel') },
    { name: 'altered timestamp', timestamp: now + 1, signature: good },
    // 10 s past Slack's five minutes: a second may pass between this line and Deputy's check.
    { name: 'stale', timestamp: now - 310, signature: slack.sign(now - 310, body) },
    { name: 'future', timestamp: now + 310, signature: slack.sign(now + 310, body) },
    { name: 'no signature', timestamp: now, signature: '' },
  ];
  for (const c of cases) {
    const r = await slack.sendRaw({
      body: c.body ?? body,
      contentType: 'application/x-www-form-urlencoded',
      timestamp: c.timestamp,
      signature: c.signature,
    });
    assert.equal(r.status, 401, c.name);
  }
  await sleep(300);
  assert.equal(slack.calls.length, 0, 'no Slack call may follow a refused request');
  assert.equal(await deputy.metric('deputy_slack_requests_total', { outcome: 'accepted' }), accepted);
});

test('a signed but malformed payload gets 400', async () => {
  const r = await slack.sendRaw({ body: '{"type":"event_callback"', contentType: 'application/json' });
  assert.equal(r.status, 400);
  const form = await slack.sendRaw({ body: 'payload=%7Bnot-json', contentType: 'application/x-www-form-urlencoded' });
  assert.equal(form.status, 400);
});

test('slash command help answers ephemerally through response_url with Block Kit', async () => {
  const r = await slack.sendSlashCommand({ user: 'U0ALICE', channel: 'C0GENERAL', text: 'help' });
  assert.equal(r.status, 200);
  assert.equal(r.text, '', 'the ack is empty so Slack shows nothing extra');
  const call = await slack.waitForCall('response_url');
  assert.equal(call.body.response_type, 'ephemeral');
  assert.ok(Array.isArray(call.body.blocks) && call.body.blocks.length > 0);
  assert.ok(personalAccountsButton(call.body.blocks), 'help has a Personal accounts button');
  assert.match(call.body.text, /what I can do/);
  const text = blockTexts(call.body.blocks);
  assert.match(text, /\*create opportunity\* — Create a Salesforce opportunity as you/, 'help lists the recipes');
  // mrkdwn needs < and > escaped; Slack shows them as typed.
  assert.match(text, /create opportunity &lt;name&gt; &lt;amount&gt; \[close_date=YYYY-MM-DD\]/, 'with their usage');
  assert.match(text, /`connect &lt;app&gt;` — log in to an app as yourself/, 'built-in commands escaped the same way');
  assert.doesNotMatch(text, /<app>/);
});

test('@Deputy help in a channel answers only the asker (chat.postEphemeral)', async () => {
  const r = await slack.sendAppMention({ user: 'U0BOB', channel: 'C0GENERAL', text: 'help' });
  assert.equal(r.status, 200);
  const call = await slack.waitForCall('chat.postEphemeral');
  assert.equal(call.body.channel, 'C0GENERAL');
  assert.equal(call.body.user, 'U0BOB');
  assert.ok(personalAccountsButton(call.body.blocks));
  assert.equal(call.headers.authorization, `Bearer ${BOT_TOKEN}`);
  assert.equal(slack.callsOf('chat.postMessage').length, 0, 'nothing is posted for the whole channel');
});

test('a DM is answered inline, as a person would; a DM written in a thread is answered in that thread', async () => {
  const r = await slack.sendDirectMessage({ user: 'U0CAROL', text: 'help' });
  assert.equal(r.status, 200);
  const call = await slack.waitForCall('chat.postMessage');
  assert.equal(call.body.channel, slack.dmChannelOf('U0CAROL'));
  assert.equal(call.body.thread_ts, undefined, 'not threaded under the question');
  assert.ok(personalAccountsButton(call.body.blocks));

  const parent = '1700000000.000300';
  const threaded = await slack.sendDirectMessage({ user: 'U0CAROL', text: 'help', threadTs: parent });
  const inThread = await slack.answerTo(threaded);
  assert.equal(inThread.body.thread_ts, parent);
});

test("Slack's ssl_check probe gets 200 with an empty body, unsigned, and stores nothing", async () => {
  const accepted = await deputy.metric('deputy_slack_requests_total', { outcome: 'accepted' });
  // As Slack sends it: a form with ssl_check=1 and the verification token, no signature.
  const r = await fetch(`${deputy.url}/slack/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)' },
    body: 'ssl_check=1&token=fakeVerificationToken',
  });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), '');
  // A probe that also names a command is still only a probe.
  const withCommand = await fetch(`${deputy.url}/slack/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `ssl_check=1&team_id=T0DEPUTY&user_id=U0ALICE&command=%2Fdeputy&text=help&response_url=${encodeURIComponent(`${slack.baseUrl}/response/probe`)}`,
  });
  assert.equal(withCommand.status, 200);
  await sleep(300);
  assert.equal(await deputy.metric('deputy_slack_requests_total', { outcome: 'accepted' }), accepted, 'nothing was queued');
  assert.equal(await deputy.metric('deputy_slack_requests_total', { kind: 'ssl_check' }), 2);
  assert.equal(slack.calls.length, 0, 'nothing was answered through Slack');
  // Without ssl_check=1 the same unsigned form is refused.
  const unsigned = await fetch(`${deputy.url}/slack/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'ssl_check=0&token=fakeVerificationToken',
  });
  assert.equal(unsigned.status, 401);
});

test('the Personal accounts button is routed and answered', async () => {
  const r = await slack.sendBlockAction({
    user: 'U0ALICE', actionId: 'view.connections', value: 'list', blockId: 'deputy.help',
    messageTs: '1700000000.000100', channel: 'C0GENERAL', isEphemeral: true,
  });
  assert.equal(r.status, 200);
  const call = await slack.waitForCall('response_url');
  assert.match(blockTexts(call.body.blocks), /Personal accounts/);
  assert.equal(call.body.response_type, 'ephemeral');
});

test('a typo of a recipe command is answered with that recipe', async () => {
  await slack.sendAppMention({ user: 'U0ALICE', text: 'create oportunity Acme 5000' });
  const call = await slack.waitForCall('chat.postEphemeral');
  assert.match(blockTexts(call.body.blocks), /Did you mean \*create opportunity\*/);
});

test('an unknown command gets a clear reply naming the nearest command', async () => {
  await slack.sendSlashCommand({ user: 'U0ALICE', text: 'conections' });
  const call = await slack.waitForCall('response_url');
  assert.match(blockTexts(call.body.blocks), /don't know the command \*conections\*/);
  assert.match(blockTexts(call.body.blocks), /Did you mean \*connections\*/);
});

test('a retried event (same event_id, X-Slack-Retry-Num) runs once', async () => {
  const event = { type: 'app_mention', user: 'U0ALICE', channel: 'C0RANDOM', text: `<@${slack.botUserId}> help`, ts: '1700000001.000200' };
  const eventId = 'Ev0RETRYTEST1';
  const first = await slack.sendEvent(event, { eventId });
  assert.equal(first.status, 200);
  for (const retryNum of [1, 2, 3]) {
    const retry = await slack.sendEvent(event, { eventId, retryNum, retryReason: 'http_timeout' });
    assert.equal(retry.status, 200, 'retries are acknowledged so Slack stops');
  }
  await slack.waitForCall('chat.postEphemeral');
  await sleep(700);
  assert.equal(slack.callsOf('chat.postEphemeral').filter((c) => !c.failed).length, 1);
  assert.ok((await deputy.metric('deputy_slack_requests_total', { outcome: 'duplicate' })) >= 3);
});

test('a double click on the same button runs once', async () => {
  const click = { user: 'U0BOB', actionId: 'approval.approve', value: 'job-1', messageTs: '1700000002.000300', channel: 'C0GENERAL' };
  await Promise.all([slack.sendBlockAction(click), slack.sendBlockAction(click)]);
  await slack.waitForCall('response_url');
  await sleep(500);
  assert.equal(slack.callsOf('response_url').length, 1);
});

test('a 429 from Slack is waited out and the answer still arrives', async () => {
  slack.failNext('chat.postEphemeral', { status: 429, retryAfter: 1, times: 1 });
  await slack.sendAppMention({ user: 'U0ALICE', channel: 'C0GENERAL', text: 'help' });
  const delivered = await eventually(() => slack.callsOf('chat.postEphemeral').find((c) => !c.failed), { timeoutMs: 8000, message: 'retried postEphemeral' });
  const limited = slack.callsOf('chat.postEphemeral').find((c) => c.failed);
  assert.ok(limited, 'the first attempt was rate limited');
  assert.ok(delivered.at - limited.at >= 950, `waited ${delivered.at - limited.at} ms, Retry-After said 1 s`);
  assert.ok((await deputy.metric('deputy_slack_api_calls_total', { method: 'chat.postEphemeral', outcome: 'rate_limited' })) >= 1);
});

test('health, readiness and metrics endpoints', async () => {
  assert.equal((await fetch(`${deputy.url}/healthz`)).status, 200);
  assert.equal((await fetch(`${deputy.url}/readyz`)).status, 200);
  const metrics = await (await fetch(`${deputy.url}/metrics`)).text();
  // On PostgreSQL, where several processes may share the database, every sample also says
  // which process it came from; alone on SQLite, a process keeps the label sets it always had.
  const onPostgres = Boolean(process.env.DEPUTY_E2E_POSTGRES_URL);
  const p = onPostgres ? ',process="[^"]+:\\d+"' : '';
  assert.match(metrics, new RegExp(`deputy_http_requests_total\\{route="/slack/events",status="200"${p}\\} \\d+`));
  assert.match(metrics, new RegExp(`deputy_http_request_duration_seconds_bucket\\{route="/slack/events"${p},le="0.005"\\}`));
  assert.match(metrics, new RegExp(`deputy_slack_api_calls_total\\{method="chat.postEphemeral",outcome="ok"${p}\\}`));
  assert.match(metrics, new RegExp(`deputy_jobs\\{kind="delivery",state="queued"${p}\\} \\d+`));
  assert.equal((await fetch(`${deputy.url}/nope`)).status, 404);
  assert.equal((await fetch(`${deputy.url}/slack/events`)).status, 405);
  assert.doesNotMatch(metrics, /xoxb-/);
});

test('an oversized body is refused with 413', async () => {
  const big = 'text=' + 'x'.repeat(2 * 1024 * 1024);
  const r = await slack.sendRaw({ body: big, contentType: 'application/x-www-form-urlencoded' });
  assert.equal(r.status, 413);
});
