// Jobs wait on apps without holding threads: with Salesforce answering late, more jobs are
// in flight than Deputy has workers, and a ServiceNow job is answered while they all wait.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FetchBrowser } from '../support/auth-server.mjs';
import { SALESFORCE_BASE } from '../support/fake-apps.mjs';
import { startStack, connectLink } from '../support/stack.mjs';

let stack;

before(async () => {
  // Two workers: before, a job held one for its whole app call.
  stack = await startStack({ withApps: true, extraConfig: 'server:\n  workers: 2\n' });
  for (const app of ['salesforce', 'servicenow']) {
    const { url } = await connectLink(stack.slack, 'U0ALICE', app);
    const browser = new FetchBrowser();
    await browser.request(await browser.login(url, { login: 'alice' }));
  }
});

after(async () => {
  await stack?.stop();
});

test('a slow app does not hold the workers: another app\'s job is answered while twelve jobs wait', async () => {
  const { slack, apps } = stack;
  apps.delayByPath = { [SALESFORCE_BASE]: 6000 };
  const answered = (sent, pattern) => (c) => c.method === 'response_url' && c.id === sent.responseId && pattern.test(c.body.text);
  const slow = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    slack.sendSlashCommand({ user: 'U0ALICE', text: `create opportunity slow-${i} 1 2026-12-31` })));
  // Time for all twelve to reach Salesforce, which holds them for six seconds.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const started = Date.now();
  const quick = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create incident "Printer on fire"' });
  const done = await slack.waitForCall(answered(quick, /Opened incident/), { timeoutMs: 3000 });
  assert.ok(done, 'ServiceNow answered');
  assert.ok(Date.now() - started < 3000, `the ServiceNow job waited ${Date.now() - started} ms`);
  assert.equal(apps.recordsOf('Opportunity').filter((r) => r.fields.Name.startsWith('slow-')).length, 0, 'Salesforce is still answering');
  // And the slow ones finish, each once.
  for (const sent of slow) await slack.waitForCall(answered(sent, /Created opportunity/), { timeoutMs: 15000 });
  assert.equal(apps.recordsOf('Opportunity').filter((r) => r.fields.Name.startsWith('slow-')).length, 12);
  apps.delayByPath = {};
});
