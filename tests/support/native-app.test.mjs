// The native fake app (bench/fake_app) must check tokens as an app does and answer late, or
// bench/jobs measures something no real app would let through.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { NativeApps } from './native-app.mjs';
import { SALESFORCE_BASE } from './fake-apps.mjs';
import { startStack, connectLink } from './stack.mjs';
import { FetchBrowser } from './auth-server.mjs';

let stack;

before(async () => {
  stack = await startStack({ withApps: true, appServer: (introspection) => new NativeApps({ ...introspection, delayMs: 300 }).start() });
});

after(async () => {
  await stack?.stop();
});

const opportunity = (headers) => fetch(`${stack.apps.url}${SALESFORCE_BASE}/sobjects/Opportunity`, {
  method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"Name":"x"}',
});

test('a call without a token, or with one the authorization server does not know, is refused', async () => {
  assert.equal((await opportunity({})).status, 401);
  const forged = await opportunity({ authorization: 'Bearer not-a-token-the-server-issued' });
  assert.equal(forged.status, 401);
  assert.match(await forged.text(), /INVALID_SESSION_ID/);
  const stats = await stack.apps.stats();
  assert.equal(stats.rejected, 2);
  assert.equal(stats.created.Opportunity, 0);
});

test('a job with a person\'s token creates the record after the delay and gets its id', async () => {
  const { slack, auth, apps } = stack;
  const { url } = await connectLink(slack, 'U0ALICE', 'salesforce');
  const browser = new FetchBrowser();
  await browser.request(await browser.login(url, { login: 'alice' }));
  assert.ok(auth.issued.accessTokens.length > 0);

  const started = performance.now();
  const sent = await slack.sendSlashCommand({ user: 'U0ALICE', text: 'create opportunity native 5 2026-12-31' });
  const reply = await slack.waitForCall((c) => c.method === 'response_url' && c.id === sent.responseId && /opportunity/.test(c.body.text));
  assert.match(reply.body.text, /Created opportunity \*native\*.*`006\d{15}`/);
  assert.ok(performance.now() - started >= 300, 'the answer came after the app\'s delay');
  const stats = await apps.stats();
  assert.equal(stats.created.Opportunity, 1);
  assert.equal(stats.in_flight['/services/data/v60.0'], 0);
});
