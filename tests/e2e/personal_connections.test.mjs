// Personal connections end to end: Deputy as a process, the Slack fake, and a real OpenID
// Connect authorization server (oidc-provider) with PKCE, refresh rotation and revocation.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { FetchBrowser } from '../support/auth-server.mjs';
import { sleep } from '../support/deputy.mjs';
import { startStack, findButton, findLeakedSecrets, connectLink as askForLink, CLIENT_SECRET } from '../support/stack.mjs';

let stack;
let slack;
let auth;
let deputy;

before(async () => {
  stack = await startStack({
    extraApps: `  vault:
    type: oauth2
    display_name: Code Vault
    issuer: \${issuer}
    client_id: deputy
    scopes: [openid, email, offline_access]
    identity_check: one_time_code
  plain:
    type: oauth2
    display_name: Plain CRM
    client_id: deputy
    authorize_url: \${issuer}/auth
    token_url: \${issuer}/token
    userinfo_url: \${issuer}/me
    revoke_url: \${issuer}/token/revocation
    identity: { source: userinfo }
`,
    env: { DEPUTY_APP_VAULT_CLIENT_SECRET: CLIENT_SECRET, DEPUTY_APP_PLAIN_CLIENT_SECRET: CLIENT_SECRET, DEPUTY_LOG_LEVEL: 'trace' },
  });
  ({ slack, auth, deputy } = stack);
});

after(async () => {
  await stack?.stop();
});

beforeEach(() => slack.clear());

async function connectLink(user, app = 'demo') {
  const { url, reply } = await askForLink(slack, user, app);
  assert.equal(reply.body.channel, slack.dmChannelOf(user), 'the link goes only to the person, in a DM');
  return url;
}

async function connectionsOf(user) {
  slack.clear();
  const sent = await slack.sendDirectMessage({ user, text: 'connections' });
  // The list, not a note about a login that may still be on its way.
  const reply = await slack.answerTo(sent, { match: (c) => c.body.text === 'Your personal accounts' });
  return reply.body.blocks;
}

async function dmTo(user, pattern) {
  return slack.waitForCall((c) => c.method === 'chat.postMessage' && !c.failed && c.body.channel === user && pattern.test(c.body.text));
}

test('full connect: PKCE login at the authorization server, success page, DM, listed', async () => {
  const link = await connectLink('U0ALICE');
  const browser = new FetchBrowser();
  const authorize = await browser.request(link);
  assert.equal(authorize.status, 302);
  const params = new URL(authorize.location).searchParams;
  assert.equal(params.get('code_challenge_method'), 'S256');
  assert.equal(params.get('code_challenge').length, 43);
  assert.ok(params.get('state').length >= 43, 'state carries at least 128 bits');
  assert.equal(params.get('redirect_uri'), `${deputy.url}/oauth/callback`);

  const callback = await browser.login(link, { login: 'alice' }).catch(async () => null);
  // The link was already opened above, so it must be refused the second time.
  assert.equal(callback, null, 'a connect link works only once');

  const fresh = await connectLink('U0ALICE');
  const back = await new FetchBrowser().login(fresh, { login: 'alice' });
  assert.equal(new URL(back).searchParams.get('iss'), auth.issuer);
  slack.clear();
  const okBrowser = new FetchBrowser();
  const done = await okBrowser.login(await connectLink('U0ALICE'), { login: 'alice' });
  const page = await okBrowser.request(done);
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /Connected as alice@example\.com — you can return to Slack/);
  await dmTo('U0ALICE', /Connected to Demo CRM as alice@example\.com/);

  const blocks = await connectionsOf('U0ALICE');
  const text = JSON.stringify(blocks);
  assert.match(text, /Demo CRM\* — alice@example\.com/);
  assert.match(text, /active/);
  assert.ok(findButton(blocks, (e) => e.action_id === 'connection.disconnect'), 'each row has Disconnect');
});

test('a finished callback replayed, a forged state or a missing state changes nothing', async () => {
  const browser = new FetchBrowser();
  const back = await browser.login(await connectLink('U0CAROL'), { login: 'carol' });
  assert.equal((await browser.request(back)).status, 200);
  const replay = await browser.request(back);
  assert.equal(replay.status, 400);
  assert.match(replay.text, /already/);
  const forged = new URL(back);
  forged.searchParams.set('state', 'x'.repeat(43));
  assert.equal((await browser.request(forged.toString())).status, 400);
  forged.searchParams.delete('state');
  assert.equal((await browser.request(forged.toString())).status, 400);
});

test('a callback in another browser than the one that opened the link is refused', async () => {
  const back = await new FetchBrowser().login(await connectLink('U0CAROL'), { login: 'carol' });
  const elsewhere = await new FetchBrowser().request(back);
  assert.equal(elsewhere.status, 400);
  assert.match(elsewhere.text, /same browser/);
});

test('denied consent: a friendly page, a DM, nothing connected', async () => {
  const browser = new FetchBrowser();
  const back = await browser.login(await connectLink('U0BOB'), { login: 'bob', deny: true });
  assert.equal(new URL(back).searchParams.get('error'), 'access_denied');
  const page = await browser.request(back);
  assert.equal(page.status, 200);
  assert.match(page.text, /Nothing was connected/);
  await dmTo('U0BOB', /did not allow Deputy/);
  assert.match(JSON.stringify(await connectionsOf('U0BOB')), /no personal accounts connected/);
});

test("Alice's link finished in Bob's session (email_match) connects nobody", async () => {
  const revocationsBefore = auth.revocations.length;
  const link = await connectLink('U0ALICE');
  const bobsBrowser = new FetchBrowser();
  const back = await bobsBrowser.login(link, { login: 'bob' });
  const page = await bobsBrowser.request(back);
  assert.equal(page.status, 403);
  assert.match(page.text, /bob@example\.com/);
  assert.match(page.text, /Nothing was connected/);
  await dmTo('U0ALICE', /not yours, so nothing was connected/);
  assert.ok(auth.revocations.length > revocationsBefore, "Bob's just-issued grant is revoked at the server");
  const alice = JSON.stringify(await connectionsOf('U0ALICE'));
  assert.doesNotMatch(alice, /bob@example\.com/, "Bob's account is not bound to Alice");
});

test('disconnect revokes at the server and updates the message; a forged disconnect is refused', async () => {
  const browser = new FetchBrowser();
  const refreshBefore = auth.issued.refreshTokens.length;
  const back = await browser.login(await connectLink('U0CAROL'), { login: 'carol' });
  assert.equal((await browser.request(back)).status, 200);
  const refreshToken = auth.issued.refreshTokens.at(-1);
  assert.ok(auth.issued.refreshTokens.length > refreshBefore);
  assert.equal((await auth.introspect(refreshToken)).active, true);

  const blocks = await connectionsOf('U0CAROL');
  const button = findButton(blocks, (e) => e.action_id === 'connection.disconnect');
  assert.ok(button.confirm, 'Disconnect asks for confirmation');

  // Bob forges a click on Carol's Disconnect button.
  const refusedBefore = await deputy.metric('deputy_oauth_events_total', { event: 'disconnect_refused' });
  await slack.sendBlockAction({ user: 'U0BOB', actionId: 'connection.disconnect', value: button.value, channel: 'C0GENERAL', isEphemeral: true });
  await slack.waitForCall('response_url');
  assert.equal((await auth.introspect(refreshToken)).active, true, "Carol's grant survives Bob's click");
  assert.equal(await deputy.metric('deputy_oauth_events_total', { event: 'disconnect_refused' }), refusedBefore + 1);

  slack.clear();
  await slack.sendBlockAction({ user: 'U0CAROL', actionId: 'connection.disconnect', value: button.value, channel: 'C0GENERAL', isEphemeral: true });
  const updated = await slack.waitForCall('response_url');
  assert.equal(updated.body.replace_original, true, 'the same message is updated in place');
  assert.doesNotMatch(JSON.stringify(updated.body.blocks), /carol@example\.com/);
  assert.equal((await auth.introspect(refreshToken)).active, false, 'introspection says the grant is gone');
});

test('one_time_code: the connection is active only after the same Slack user sends the code back', async () => {
  const browser = new FetchBrowser();
  const back = await browser.login(await connectLink('U0ALICE', 'vault'), { login: 'alice' });
  const page = await browser.request(back);
  assert.equal(page.status, 200);
  const code = page.text.match(/id="code">(\d{6})</)[1];
  assert.match(JSON.stringify(await connectionsOf('U0ALICE')), /waiting for your code/);
  // Someone else sending the code achieves nothing.
  await slack.sendDirectMessage({ user: 'U0BOB', text: `verify ${code}` });
  await slack.waitForCall((c) => c.method === 'chat.postMessage' && /does not match/.test(c.body.text));
  slack.clear();
  await slack.sendDirectMessage({ user: 'U0ALICE', text: `verify ${code}` });
  await dmTo('U0ALICE', /Connected to Code Vault as alice@example\.com/);
  assert.match(JSON.stringify(await connectionsOf('U0ALICE')), /Code Vault\* — alice@example\.com.*active/);
});

test('email_match with no Slack email for the person has nothing to compare: the connect flow finishes as usual', async () => {
  const browser = new FetchBrowser();
  const back = await browser.login(await connectLink('U0NOEMAIL'), { login: 'carol' });
  const page = await browser.request(back);
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /Connected as carol@example\.com — you can return to Slack/);
  await dmTo('U0NOEMAIL', /Connected to Demo CRM as carol@example\.com/);
  assert.match(deputy.logs, /email_match could not compare for U0NOEMAIL on demo: the Slack profile has no email/);
});

test('email_match does not skip the check when Slack cannot be asked for the moment: the login is refused, try again', async () => {
  const browser = new FetchBrowser();
  const back = await browser.login(await connectLink('U0BOB'), { login: 'bob' });
  slack.failNext('users.info', { status: 503, times: 4 });
  const page = await browser.request(back);
  assert.equal(page.status, 503, page.text);
  assert.match(page.text, /nothing was connected/);
  await dmTo('U0BOB', /Slack could not tell me who you are just now\. Nothing was connected\. Try again in a moment\./);
  assert.doesNotMatch(JSON.stringify(await connectionsOf('U0BOB')), /Demo CRM/);
});

test('an iss naming another server is refused (RFC 9207), whether the issuer is configured or only the authorize URL is known', async () => {
  for (const app of ['demo', 'plain']) {
    const browser = new FetchBrowser();
    const back = new URL(await browser.login(await connectLink('U0ADMIN', app), { login: 'admin' }));
    assert.equal(back.searchParams.get('iss'), auth.issuer);
    back.searchParams.set('iss', 'https://login.attacker.example');
    slack.clear();
    const refused = await browser.request(back.toString());
    assert.equal(refused.status, 400, `${app}: ${refused.text}`);
    assert.match(refused.text, /did not come from/);

    const again = new FetchBrowser();
    const good = await again.login(await connectLink('U0ADMIN', app), { login: 'admin' });
    const page = await again.request(good);
    assert.equal(page.status, 200, `${app}: ${page.text}`);
    assert.match(page.text, /Connected as admin@example\.com/);
  }
  const names = JSON.stringify(await connectionsOf('U0ADMIN'));
  assert.match(names, /Demo CRM/);
  assert.match(names, /Plain CRM/);
});

test('no token, code, verifier or secret is readable in the database files or the logs', async () => {
  await sleep(200);
  const { leaks, files, counts } = findLeakedSecrets(stack);
  assert.ok(stack.deputy.postgres ? files.includes('pg_dump') : files.includes('deputy.db') && files.includes('deputy.db-wal'), `scanned ${files}`);
  assert.ok(counts.refreshTokens > 0 && counts.verifiers > 0 && counts.codes > 0, JSON.stringify(counts));
  assert.deepEqual(leaks, []);
});
