// Tokens on demand against the real authorization server: renewal before expiry (once for
// many concurrent jobs, with a rotating refresh token) and a revoked grant needing a new login.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { FetchBrowser } from '../support/auth-server.mjs';
import { sleep } from '../support/deputy.mjs';
import { startStack, connectLink, findLeakedSecrets } from '../support/stack.mjs';

let stack;

before(async () => {
  // Access tokens live 4 s, so renewal happens inside the test.
  stack = await startStack({ accessTokenTtl: 4, extraConfig: 'server:\n  workers: 10\n', env: { DEPUTY_LOG_LEVEL: 'trace' } });
});

after(async () => {
  await stack?.stop();
});

beforeEach(() => stack.slack.clear());

async function connect(user, login) {
  const browser = new FetchBrowser();
  const back = await browser.login((await connectLink(stack.slack, user)).url, { login });
  assert.equal((await browser.request(back)).status, 200);
}

async function check(user) {
  // Each in a thread of its own, so that twenty at once get answers that can be told apart.
  const sent = await stack.slack.sendDirectMessage({ user, text: 'check demo', inThread: true });
  const reply = await stack.slack.answerTo(sent, { timeoutMs: 15000 });
  return reply.body.text;
}

test('an expired access token is renewed; 20 concurrent jobs make exactly one refresh and none fails', async () => {
  const { auth } = stack;
  await connect('U0ALICE', 'alice');
  assert.match(await check('U0ALICE'), /Demo CRM knows you as alice@example\.com/);
  const before = auth.countTokenRequests('refresh_token');
  await sleep(4500);
  const replies = await Promise.all(Array.from({ length: 20 }, () => check('U0ALICE')));
  for (const text of replies) assert.match(text, /Demo CRM knows you as alice@example\.com/);
  assert.equal(auth.countTokenRequests('refresh_token') - before, 1, 'one refresh for all twenty');
  assert.equal(auth.tokenRequests.filter((r) => r.error).length, 0, 'no refresh was refused (rotation kept consistent)');
});

test('a grant revoked at the app marks the connection needs re-login and asks to reconnect', async () => {
  const { auth, slack } = stack;
  await connect('U0BOB', 'bob');
  await auth.revokeGrantsOf('bob');
  await sleep(4500);
  const text = await check('U0BOB');
  assert.match(text, /login has expired/);
  slack.clear();
  const sent = await slack.sendDirectMessage({ user: 'U0BOB', text: 'connections' });
  const list = await slack.answerTo(sent);
  assert.match(JSON.stringify(list.body.blocks), /needs re-login/);
});

test('a token endpoint that is down is retried and the connection survives', async () => {
  const { auth } = stack;
  await connect('U0CAROL', 'carol');
  await sleep(4500);
  auth.failNextToken({ status: 503, times: 2 });
  assert.match(await check('U0CAROL'), /knows you as carol@example\.com/);
});

test('after refreshes, nothing secret is readable in the database files or the trace logs', async () => {
  await sleep(200);
  const { leaks, counts } = findLeakedSecrets(stack);
  assert.ok(counts.accessTokens >= 4, JSON.stringify(counts));
  assert.deepEqual(leaks, []);
});

test('deputy keys rotate re-encrypts while the server runs, which keeps working', async () => {
  const { execFileSync } = await import('node:child_process');
  const { DEPUTY_BIN } = await import('../support/deputy.mjs');
  const { deputy } = stack;
  const out = execFileSync(DEPUTY_BIN, ['keys', 'rotate', '--config', deputy.config], {
    cwd: deputy.dir,
    env: deputy.cliEnv({ DEPUTY_APP_DEMO_CLIENT_SECRET: 'x' }),
  }).toString();
  assert.match(out, /re-encrypted [1-9]\d* connections/);
  assert.match(await check('U0ALICE'), /knows you as alice@example\.com/);
});
