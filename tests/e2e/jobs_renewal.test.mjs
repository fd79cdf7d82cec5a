// A renewal against a slow token endpoint holds no worker: jobs waiting for the same
// connection's renewal subscribe to it (one token request), and the only worker answers
// other people meanwhile.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FetchBrowser } from '../support/auth-server.mjs';
import { startStack, connectLink } from '../support/stack.mjs';

let stack;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

before(async () => {
  // Access tokens that last two seconds, and a single worker.
  stack = await startStack({ withApps: true, accessTokenTtl: 2, extraConfig: 'server:\n  workers: 1\n' });
  const { url } = await connectLink(stack.slack, 'U0ALICE', 'salesforce');
  const browser = new FetchBrowser();
  await browser.request(await browser.login(url, { login: 'alice' }));
});

after(async () => {
  await stack?.stop();
});

test('jobs waiting on one slow renewal share it, and the worker serves others meanwhile', async () => {
  const { slack, auth, apps } = stack;
  await sleep(2500);  // Alice's access token has expired
  const before = auth.countTokenRequests('refresh_token');
  auth.tokenDelayMs = 3000;
  try {
    const jobs = [];
    for (let i = 0; i < 3; i += 1) jobs.push(await slack.sendSlashCommand({ user: 'U0ALICE', text: `create opportunity renewing-${i} 1 2026-12-31` }));
    await sleep(300);
    const started = Date.now();
    const help = await slack.sendSlashCommand({ user: 'U0BOB', text: 'help' });
    const helped = await slack.waitForCall((c) => c.method === 'response_url' && c.id === help.responseId, { timeoutMs: 2500 });
    assert.ok(helped, 'Bob was answered');
    assert.ok(Date.now() - started < 1500, `Bob waited ${Date.now() - started} ms behind a renewal`);
    for (const sent of jobs) {
      const done = await slack.waitForCall((c) => c.method === 'response_url' && c.id === sent.responseId, { timeoutMs: 10000 });
      assert.ok(done, 'the job finished');
      assert.match(done.body.text, /Created opportunity/);
    }
    assert.equal(auth.countTokenRequests('refresh_token') - before, 1, 'one renewal for the three jobs');
    assert.equal(apps.recordsOf('Opportunity').filter((r) => r.fields.Name.startsWith('renewing-')).length, 3);
  } finally {
    auth.tokenDelayMs = 0;
  }
});
