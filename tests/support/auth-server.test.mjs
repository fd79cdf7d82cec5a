// The authorization server wrapper must behave like a real one, or Deputy's OAuth tests prove nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { AuthServer, FetchBrowser } from './auth-server.mjs';

let server;
let redirectUri;
let relying;

before(async () => {
  relying = http.createServer((req, res) => res.end('callback'));
  await new Promise((r) => relying.listen(0, '127.0.0.1', r));
  redirectUri = `http://127.0.0.1:${relying.address().port}/oauth/callback`;
  server = new AuthServer({ clients: [{ client_id: 'deputy', client_secret: 'deputy-secret', redirect_uris: [redirectUri] }], accessTokenTtl: 60 });
  await server.start();
});

after(async () => {
  await server.stop();
  relying.close();
});

function authorizeUrl(challenge, { scope = 'openid email offline_access' } = {}) {
  const q = new URLSearchParams({ response_type: 'code', client_id: 'deputy', redirect_uri: redirectUri, scope, state: 'st', prompt: 'consent' });
  if (challenge) {
    q.set('code_challenge', challenge);
    q.set('code_challenge_method', 'S256');
  }
  return `${server.issuer}/auth?${q}`;
}

async function token(form) {
  const r = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('deputy:deputy-secret').toString('base64')}` },
    body: new URLSearchParams(form).toString(),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, json };
}

async function fullLogin() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const back = new URL(await new FetchBrowser().login(authorizeUrl(challenge), { login: 'alice', callbackPrefix: redirectUri }));
  assert.equal(back.searchParams.get('state'), 'st');
  assert.equal(back.searchParams.get('iss'), server.issuer, 'RFC 9207 iss is sent');
  return { code: back.searchParams.get('code'), verifier };
}

test('discovery names the endpoints and RFC 9207 support', async () => {
  const d = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json();
  assert.equal(d.issuer, server.issuer);
  assert.ok(d.revocation_endpoint && d.introspection_endpoint && d.userinfo_endpoint);
  assert.equal(d.authorization_response_iss_parameter_supported, true);
});

test('authorization code with PKCE, refresh rotation, revocation', async () => {
  const { code, verifier } = await fullLogin();
  const first = await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
  assert.equal(first.status, 200, JSON.stringify(first.json));
  assert.ok(first.json.refresh_token && first.json.id_token);
  const refreshed = await token({ grant_type: 'refresh_token', refresh_token: first.json.refresh_token });
  assert.equal(refreshed.status, 200);
  assert.notEqual(refreshed.json.refresh_token, first.json.refresh_token, 'refresh tokens rotate');
  const reused = await token({ grant_type: 'refresh_token', refresh_token: first.json.refresh_token });
  assert.equal(reused.json.error, 'invalid_grant');
  assert.equal((await server.introspect(refreshed.json.refresh_token)).active, false, 'reuse of a rotated token ends the grant');
});

test('PKCE is enforced', async () => {
  const b = new FetchBrowser();
  const r = await b.follow(authorizeUrl(undefined), { stop: (u) => u.startsWith(redirectUri) });
  assert.match(r.stoppedAt, /error=invalid_request/);
  assert.match(r.stoppedAt, /requires\+PKCE/);
  const { code } = await fullLogin();
  const noVerifier = await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri });
  assert.equal(noVerifier.json.error, 'invalid_grant');
});

test('revocation makes introspection inactive; faults are injected', async () => {
  const { code, verifier } = await fullLogin();
  const t = await token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
  assert.equal((await server.introspect(t.json.refresh_token)).active, true);
  const r = await fetch(`${server.issuer}/token/revocation`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('deputy:deputy-secret').toString('base64')}` },
    body: new URLSearchParams({ token: t.json.refresh_token, token_type_hint: 'refresh_token' }).toString(),
  });
  assert.equal(r.status, 200);
  assert.equal((await server.introspect(t.json.refresh_token)).active, false);
  server.failNextToken({ status: 503 });
  assert.equal((await token({ grant_type: 'refresh_token', refresh_token: 'x' })).status, 503);
});
