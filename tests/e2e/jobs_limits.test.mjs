// Bulkheads, rate limits and deadlines: a busy or hanging app delays only its own jobs, a
// rate limit waits in the queue (not in a worker), and a call past its deadline ends with a
// clear answer to the person.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FetchBrowser } from '../support/auth-server.mjs';
import { SALESFORCE_BASE } from '../support/fake-apps.mjs';
import { startStack, connectLink } from '../support/stack.mjs';

let stack;

before(async () => {
  // One worker: a job that slept in it would hold up every other.
  stack = await startStack({
    withApps: true,
    extraConfig: 'server:\n  workers: 1\n  jobs_in_flight_per_app: 2\n  job_max_wait_seconds: 20\n',
    appSettings: { salesforce: 'timeout_seconds: 3' },
  });
  for (const person of [{ user: 'U0ALICE', login: 'alice' }, { user: 'U0BOB', login: 'bob' }]) {
    for (const app of ['salesforce', 'servicenow']) {
      const { url } = await connectLink(stack.slack, person.user, app);
      const browser = new FetchBrowser();
      await browser.request(await browser.login(url, { login: person.login }));
    }
  }
});

after(async () => {
  await stack?.stop();
});

const answered = (sent, pattern) => (c) => c.method === 'response_url' && c.id === sent.responseId && pattern.test(c.body.text);
const opportunities = (prefix) => stack.apps.recordsOf('Opportunity').filter((r) => r.fields.Name.startsWith(prefix));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('a busy app takes no more than its share: its jobs wait their turn while another app\'s job is answered at once', async () => {
  const { slack, apps } = stack;
  apps.delayByPath = { [SALESFORCE_BASE]: 1500 };
  try {
    const slow = [];
    for (let i = 0; i < 6; i += 1) {
      slow.push(await slack.sendSlashCommand({ user: i % 2 ? 'U0BOB' : 'U0ALICE', text: `create opportunity busy-${i} 1 2026-12-31` }));
    }
    await sleep(300);
    const started = Date.now();
    const quick = await slack.sendSlashCommand({ user: 'U0BOB', text: 'create incident "Coffee machine leaks"' });
    assert.ok(await slack.waitForCall(answered(quick, /Opened incident/), { timeoutMs: 2500 }), 'ServiceNow answered');
    assert.ok(Date.now() - started < 2500, `the ServiceNow job waited ${Date.now() - started} ms`);
    for (const sent of slow) {
      const done = await slack.waitForCall(answered(sent, /Created opportunity/), { timeoutMs: 20000 });
      assert.ok(done, 'every busy job finished');
    }
    assert.equal(opportunities('busy-').length, 6, 'each created once');
    assert.equal(apps.mostInFlight(SALESFORCE_BASE), 2, 'never more Salesforce calls in flight than jobs_in_flight_per_app');
    assert.ok(await stack.deputy.metric('deputy_jobs_deferred_total', { reason: 'app_busy' }) >= 1, 'the waits are counted');
  } finally {
    apps.delayByPath = {};
  }
});

test('a 429 puts the step back in the queue for its Retry-After, and the worker runs other jobs meanwhile', async () => {
  const { slack, apps } = stack;
  apps.failNext({ status: 429, headers: { 'retry-after': '3' }, body: [{ errorCode: 'REQUEST_LIMIT_EXCEEDED', message: 'ConcurrentPerOrgLongTxn Limit exceeded' }], path: SALESFORCE_BASE });
  const limited = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create opportunity limited 1 2026-12-31' });
  for (let i = 0; i < 50 && !apps.calls.some((c) => c.status === 429); i += 1) await sleep(50);
  const refusedAt = apps.calls.find((c) => c.status === 429)?.at;
  assert.ok(refusedAt, 'Salesforce turned the first call away');

  // With the only worker free, ServiceNow's job is answered while the other waits.
  const quick = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create incident "Printer jammed"' });
  const quickDone = await slack.waitForCall(answered(quick, /Opened incident/), { timeoutMs: 2500 });
  assert.ok(quickDone, 'ServiceNow answered');
  assert.ok(quickDone.at - refusedAt < 2500, `answered ${quickDone.at - refusedAt} ms after the 429`);

  const done = await slack.waitForCall(answered(limited, /Created opportunity/), { timeoutMs: 10000 });
  assert.ok(done, 'the limited job finished once the limit passed');
  const retried = apps.calls.filter((c) => c.path === `${SALESFORCE_BASE}/sobjects/Opportunity` && c.at >= refusedAt);
  assert.ok(retried[1].at - refusedAt >= 2900, `tried again ${retried[1].at - refusedAt} ms after the 429; Retry-After said 3 s`);
  assert.equal(opportunities('limited').length, 1, 'created once');
  assert.equal(await stack.deputy.metric('deputy_jobs_deferred_total', { reason: 'rate_limited' }), 1);
});

test('Salesforce\'s daily limit (403 REQUEST_LIMIT_EXCEEDED) that outlasts the wait a command is given tells the person', async () => {
  const { slack, apps } = stack;
  // No Retry-After: a daily limit is waited out a minute at a time, longer than this stack's 20 s.
  apps.failNext({ status: 403, body: [{ errorCode: 'REQUEST_LIMIT_EXCEEDED', message: 'TotalRequests Limit exceeded.' }], path: SALESFORCE_BASE });
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create opportunity over-limit 1 2026-12-31' });
  const told = await slack.waitForCall((c) => c.method === 'response_url' && c.id === sent.responseId, { timeoutMs: 5000 });
  assert.ok(told, 'the person is told');
  assert.match(told.body.text, /Salesforce kept limiting requests \(HTTP 403\) for longer than the 20 seconds I give a command, so I stopped before step \*create\*\. Nothing was done in that step; try again later/);
  assert.equal(opportunities('over-limit').length, 0);
});

test('a call past its deadline ends with a clear answer, and is not repeated', async () => {
  const { slack, apps } = stack;
  apps.delayByPath = { [SALESFORCE_BASE]: 5000 };
  try {
    const sent = await slack.sendSlashCommand({ user: 'U0BOB', text: 'create opportunity too-slow 1 2026-12-31' });
    const started = Date.now();
    const told = await slack.waitForCall((c) => c.method === 'response_url' && c.id === sent.responseId, { timeoutMs: 6000 });
    assert.ok(told, 'the person is told');
    assert.ok(Date.now() - started < 4500, `told after ${Date.now() - started} ms; the deadline is 3 s`);
    assert.match(told.body.text, /the call to Salesforce in step \*create\* got no answer within 3 s, so I cannot tell whether it happened\. Check Salesforce before you try again/);
    await sleep(2500);  // the app finishes the work it was given
    assert.equal(apps.calls.filter((c) => c.path === `${SALESFORCE_BASE}/sobjects/Opportunity` && c.account === 'bob' && c.at >= started).length, 1,
      'sent once: a step that may have happened is never sent again');
  } finally {
    apps.delayByPath = {};
  }
});

test('a 5xx from a step that changes data is reported as in doubt, not retried', async () => {
  const { slack, apps } = stack;
  apps.failNext({ status: 500, body: [{ errorCode: 'UNKNOWN_EXCEPTION', message: 'An unexpected error occurred' }], path: SALESFORCE_BASE });
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create opportunity in-doubt 1 2026-12-31' });
  const told = await slack.waitForCall((c) => c.method === 'response_url' && c.id === sent.responseId, { timeoutMs: 5000 });
  assert.ok(told);
  assert.match(told.body.text, /Salesforce answered HTTP 500 in step \*create\* \(An unexpected error occurred\), so I cannot tell whether it happened\. Check Salesforce before you try again; I did not repeat it/);
  await sleep(500);
  assert.equal(apps.calls.filter((c) => c.status === 500).length, 1);
  assert.equal(apps.calls.filter((c) => c.path === `${SALESFORCE_BASE}/sobjects/Opportunity` && c.at >= apps.calls.find((x) => x.status === 500).at).length, 1);
});

test('a 429 from Slack on a job\'s answer waits in the queue, not in the worker', async () => {
  const { slack } = stack;
  slack.failNext('response_url', { status: 429, retryAfter: 4, times: 1 });
  const first = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create incident "Slack was busy"' });
  const limited = await slack.waitForCall((c) => c.method === 'response_url' && c.id === first.responseId && c.failed, { timeoutMs: 3000 });
  assert.ok(limited, 'Slack turned the first answer away');
  // The only worker is free: the next command is answered at once.
  const second = await slack.sendSlashCommand({ user: 'U0BOB', text: 'create incident "Slack is fine again"' });
  const secondDone = await slack.waitForCall(answered(second, /Opened incident/), { timeoutMs: 2500 });
  assert.ok(secondDone, 'the second command was answered');
  assert.ok(secondDone.at - limited.at < 2500, `answered ${secondDone.at - limited.at} ms after the 429`);
  const firstDone = await slack.waitForCall((c) => c.method === 'response_url' && c.id === first.responseId && !c.failed, { timeoutMs: 10000 });
  assert.ok(firstDone, 'the first answer arrived');
  assert.ok(firstDone.at - limited.at >= 3900, `sent again ${firstDone.at - limited.at} ms later; Retry-After said 4 s`);
  assert.match(firstDone.body.text, /Opened incident/);
  assert.equal(stack.apps.recordsOf('incident').filter((r) => r.fields.short_description === 'Slack was busy').length, 1, 'the incident was opened once');
});

// Last in this file: it disconnects Bob's ServiceNow.
test('a disconnect waiting on the app\'s revocation endpoint holds no worker', async () => {
  const { slack, auth } = stack;
  slack.clear();
  const asked = await slack.sendDirectMessage({ user: 'U0BOB', text: 'connections' });
  const isList = (c) => (c.body.blocks ?? []).some((b) => b.accessory?.action_id === 'connection.disconnect');
  const list = await slack.answerTo(asked, { match: isList });
  const row = list.body.blocks.find((b) => b.accessory?.action_id === 'connection.disconnect' && /ServiceNow/.test(b.text?.text));
  assert.ok(row, `a ServiceNow row in ${JSON.stringify(list.body.blocks)}`);
  auth.revocationDelayMs = 1500;
  try {
    await slack.sendBlockAction({ user: 'U0BOB', actionId: 'connection.disconnect', value: row.accessory.value, channel: slack.dmChannelOf('U0BOB'), messageTs: list.response.ts });
    await sleep(300);
    // The only worker is free while the app revokes: another person's command is answered.
    const help = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'help' });
    const helped = await slack.waitForCall((c) => c.method === 'response_url' && c.id === help.responseId, { timeoutMs: 2500 });
    assert.ok(helped, 'help was answered');
    assert.equal(slack.calls.find((c) => c.method === 'chat.update'), undefined, 'before the disconnect had finished');
    const updated = await slack.waitForCall((c) => c.method === 'chat.update' && !c.failed, { timeoutMs: 10000 });
    const rows = updated.body.blocks.filter((b) => b.accessory?.action_id === 'connection.disconnect');
    assert.equal(rows.length, 1, 'one connection left');
    assert.doesNotMatch(rows[0].text.text, /ServiceNow/);
    assert.ok(auth.revocations.length >= 1, 'the app was asked to revoke');
  } finally {
    auth.revocationDelayMs = 0;
  }
});
