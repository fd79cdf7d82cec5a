// Work acknowledged to Slack survives a crash, and the server stops cleanly on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlackFake } from '../support/slack-fake.mjs';
import { Deputy, eventually, sleep } from '../support/deputy.mjs';

const SIGNING_SECRET = 'durability-secret';
const BOT_TOKEN = 'xoxb-durability-fake-token';

test('a delivery acknowledged before kill -9 is answered after restart', async () => {
  const slack = new SlackFake({ signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN });
  await slack.start();
  const env = { DEPUTY_SLACK_SIGNING_SECRET: SIGNING_SECRET, DEPUTY_SLACK_BOT_TOKEN: BOT_TOKEN, DEPUTY_SLACK_API_URL: slack.apiUrl };
  const first = new Deputy({ env });
  try {
    await first.start();
    slack.deputyUrl = first.url;
    // Slack is down: every answer fails, so the work stays queued.
    slack.failNext('chat.postEphemeral', { status: 503, times: 1000 });
    const ack = await slack.sendAppMention({ user: 'U0ALICE', channel: 'C0GENERAL', text: 'help' });
    assert.equal(ack.status, 200);
    await eventually(() => slack.callsOf('chat.postEphemeral').length > 0, { message: 'a first attempt' });
    await first.kill9();

    slack.clear();
    const second = new Deputy({ env, dir: first.dir });
    second.port = first.port;
    await second.start();
    try {
      const call = await slack.waitForCall((c) => c.method === 'chat.postEphemeral' && !c.failed, { timeoutMs: 15000 });
      assert.equal(call.body.user, 'U0ALICE');
      // A Slack retry of the same event after the restart is still a duplicate.
      await sleep(300);
      assert.equal(slack.callsOf('chat.postEphemeral').filter((c) => !c.failed).length, 1);
    } finally {
      await second.stop();
    }
  } finally {
    first.cleanup();
    await slack.stop();
  }
});

test('SIGTERM finishes cleanly with exit code 0', async () => {
  const deputy = new Deputy({ env: { DEPUTY_SLACK_SIGNING_SECRET: 's' } });
  try {
    await deputy.start();
    const { code } = await deputy.stop('SIGTERM');
    assert.equal(code, 0);
    assert.match(deputy.logs, /stopped cleanly/);
  } finally {
    deputy.cleanup();
  }
});

test('with no configuration it starts on SQLite and says once what is missing', async () => {
  const deputy = new Deputy();
  try {
    await deputy.start();
    assert.match(deputy.logs, /signing secret/i);
    assert.match(deputy.logs, /bot token/i);
    assert.match(deputy.logs, /public URL/i);
    assert.equal(deputy.logs.match(/still needs/g).length, 1);
    const r = await fetch(`${deputy.url}/slack/events`, { method: 'POST', body: 'x', headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 401, 'without a signing secret Slack requests are refused');
  } finally {
    await deputy.stop();
    deputy.cleanup();
  }
});

test('a key file that exists but is wrong stops the server; a missing one is created 0600 with a warning', async () => {
  const { writeFileSync, statSync } = await import('node:fs');
  const { join } = await import('node:path');
  const first = new Deputy({ env: { DEPUTY_SLACK_SIGNING_SECRET: 's' } });
  try {
    await first.start();
    assert.match(first.logs, /created a new encryption keyring/);
    assert.equal(statSync(join(first.dir, 'deputy.keys')).mode & 0o777, 0o600);
    await first.stop();

    writeFileSync(join(first.dir, 'deputy.keys'), '{"version":1,"active":"k","keys":[{"id":"k","key":"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="}]}');
    const wrong = new Deputy({ dir: first.dir, env: { DEPUTY_SLACK_SIGNING_SECRET: 's' } });
    await assert.rejects(wrong.start(), /exited during start/);
    assert.notEqual((await wrong.exitPromise).code, 0);

    writeFileSync(join(first.dir, 'deputy.keys'), 'garbage');
    const broken = new Deputy({ dir: first.dir, env: { DEPUTY_SLACK_SIGNING_SECRET: 's' } });
    await assert.rejects(broken.start(), /keyring is not valid JSON/);
  } finally {
    await first.stop();
    first.cleanup();
  }
});
