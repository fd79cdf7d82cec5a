// The Slack fake must itself behave like Slack, or the end-to-end tests prove nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { SlackFake } from './slack-fake.mjs';

const fixtures = new URL('../fixtures/slack/', import.meta.url);

test('signs exactly as Slack documents', () => {
  const example = JSON.parse(readFileSync(new URL('signing_example.json', fixtures)));
  const body = readFileSync(new URL(example.body_file, fixtures), 'utf8');
  const fake = new SlackFake({ signingSecret: example.signing_secret });
  assert.equal(fake.sign(example.timestamp, body), example.signature);
});

test('sends slash commands form-encoded with Slack headers and a verifiable signature', async () => {
  let seen;
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      seen = { headers: req.headers, raw, url: req.url };
      res.end('');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const fake = new SlackFake({ signingSecret: 'shh', deputyUrl: `http://127.0.0.1:${server.address().port}` });
  await fake.start();
  try {
    await fake.sendSlashCommand({ user: 'U0ALICE', text: 'create opportunity Acme 5000' });
    assert.equal(seen.url, '/slack/events');
    assert.equal(seen.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.match(seen.headers['user-agent'], /^Slackbot 1.0/);
    assert.equal(seen.headers['x-slack-signature'], fake.sign(seen.headers['x-slack-request-timestamp'], seen.raw));
    assert.ok(Math.abs(Number(seen.headers['x-slack-request-timestamp']) - Date.now() / 1000) < 5);
    assert.match(seen.raw, /&text=create%20opportunity%20Acme%205000&/);
  } finally {
    await fake.stop();
    server.close();
  }
});

test('the Web API checks the token, validates blocks, records calls and injects faults', async () => {
  const fake = new SlackFake({ signingSecret: 's', botToken: 'xoxb-right' });
  await fake.start();
  const post = (method, body, token = 'xoxb-right') =>
    fetch(`${fake.apiUrl}/${method}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(body),
    });
  try {
    assert.deepEqual(await (await post('chat.postMessage', { channel: 'C1', text: 'x' }, 'xoxb-wrong')).json(), { ok: false, error: 'invalid_auth' });
    const ok = await (await post('chat.postMessage', { channel: 'C1', text: 'hi' })).json();
    assert.equal(ok.ok, true);
    assert.match(ok.ts, /^\d+\.\d{6}$/);
    const bad = await (await post('chat.postMessage', { channel: 'C1', blocks: Array(51).fill({ type: 'divider' }) })).json();
    assert.equal(bad.error, 'invalid_blocks');
    fake.failNext('chat.postEphemeral', { status: 429, retryAfter: 3 });
    const limited = await post('chat.postEphemeral', { channel: 'C1', user: 'U1', text: 'x' });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '3');
    assert.equal((await (await post('chat.postEphemeral', { channel: 'C1', user: 'U1', text: 'x' })).json()).ok, true);
    assert.equal(fake.callsOf('chat.postEphemeral').length, 2);
    assert.equal(fake.callsOf('chat.postEphemeral')[0].failed, true);
    const info = await (await fetch(`${fake.apiUrl}/users.info?user=U0ALICE`, { headers: { authorization: 'Bearer xoxb-right' } })).json();
    assert.equal(info.user.profile.email, 'alice@example.com');
  } finally {
    await fake.stop();
  }
});
