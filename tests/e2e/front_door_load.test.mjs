// The front door under an attack of slow clients, at the usual open-file limit of 1,024: the
// real deputy binary, its limit lowered with prlimit after it started (hard limit included),
// and 1,500 clients that each send half a request and wait.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { SlackFake } from '../support/slack-fake.mjs';
import { Deputy, eventually, sleep } from '../support/deputy.mjs';

const SIGNING_SECRET = 'e2e-signing-secret-0123456789abcdef';
const BOT_TOKEN = 'xoxb-e2e-fake-bot-token';
const SLOW_CLIENTS = 1500;
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

let slack;
let deputy;
const slowClients = [];

before(async () => {
  slack = new SlackFake({ signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN });
  await slack.start();
  deputy = new Deputy({
    env: {
      DEPUTY_SLACK_SIGNING_SECRET: SIGNING_SECRET,
      DEPUTY_SLACK_BOT_TOKEN: BOT_TOKEN,
      DEPUTY_SLACK_API_URL: slack.apiUrl,
      // The episode's log, as an operator runs it.
      DEPUTY_LOG_LEVEL: 'info',
    },
  });
  await deputy.start();
  slack.deputyUrl = deputy.url;
});

after(async () => {
  for (const socket of slowClients) socket.destroy();
  await deputy?.stop();
  deputy?.cleanup();
  await slack?.stop();
});

/** CPU seconds (user and system) the process has used so far. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // After "pid (name) ", utime and stime are the 12th and 13th fields.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function slowClient(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('POST /slack/commands HTTP/1.1\r\nHost: deputy\r\nContent-Type: application/x-www-');
      resolve();
    });
    // Closed by Deputy to make room: part of the episode.
    socket.on('error', () => resolve());
    slowClients.push(socket);
  });
}

test('1,500 slow clients at an open-file limit of 1,024 delay no signed request, flood no log and spin no core', async (t) => {
  const pid = deputy.child.pid;
  execFileSync('prlimit', ['--pid', String(pid), '--nofile=1024:1024']);
  const logBefore = deputy.logs.length;

  for (let i = 0; i < SLOW_CLIENTS; i += 100) {
    await Promise.all(Array.from({ length: 100 }, () => slowClient(deputy.port)));
  }
  // Deputy has run out of files and made room: the cap came down to what fits.
  await eventually(async () => (await deputy.metric('deputy_http_connections_refused_total', { reason: 'out_of_files' })) >= 1, {
    timeoutMs: 5000,
    message: 'Deputy ran out of open files',
  });

  const started = Date.now();
  const ack = await slack.sendSlashCommand({ user: 'U0ALICE', channel: 'C0GENERAL', text: 'help' });
  const ackMs = Date.now() - started;
  assert.equal(ack.status, 200);
  assert.ok(ackMs < 1000, `a signed request was acked in ${ackMs} ms behind ${SLOW_CLIENTS} slow clients`);
  const answer = await slack.waitForCall('response_url', { timeoutMs: 5000 });
  assert.match(answer.body.text, /what I can do/);

  // While the slow clients wait, Deputy waits too: under 20 % of a core.
  const cpuBefore = cpuSeconds(pid);
  await sleep(3000);
  const cpu = cpuSeconds(pid) - cpuBefore;
  assert.ok(cpu < 0.6, `Deputy used ${cpu.toFixed(2)} CPU-s in 3 s while the slow clients waited`);

  const episode = deputy.logs.slice(logBefore);
  const lines = episode.split('\n').filter(Boolean);
  t.diagnostic(`ack ${ackMs} ms; ${cpu.toFixed(2)} CPU-s in 3 s; ${lines.length} log lines`);
  assert.ok(lines.length < 1000, `${lines.length} log lines during the episode:\n${lines.slice(0, 20).join('\n')}`);
  assert.match(episode, /cannot accept connections: Too many open files \(open-file limit 1024\)/);

  assert.ok((await deputy.metric('deputy_http_connections_shed_total', { state: 'reading' })) > 0, 'slow clients were shed');
  const open = await deputy.metric('deputy_http_connections', { state: 'open' });
  const max = await deputy.metric('deputy_http_connections', { state: 'max' });
  assert.ok(max < 1024 && open <= max + 1, `${open} connections open, at most ${max}`);
});
