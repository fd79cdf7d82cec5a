// End-to-end jobs per second: signed slash commands in, each one a personal-connection job
// (token decrypted from the vault) that calls the fake Salesforce and answers through
// response_url. Deputy runs as a process on SQLite. The commands and the response_url come
// from bench/slack_load and the app is bench/fake_app, both native, when they are built; the
// rest of Slack (the Web API) and the authorization server are the local fakes from
// tests/support, in this Node process.
// Usage: node bench/jobs/jobs.mjs [jobs] [concurrency]   (DEPUTY_BIN picks the binary)
import { FetchBrowser } from '../../tests/support/auth-server.mjs';
import { startStack, connectLink } from '../../tests/support/stack.mjs';
import { NativeApps, FAKE_APP_BIN } from '../../tests/support/native-app.mjs';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, resolve } from 'node:path';
import { DEPUTY_BIN } from '../../tests/support/deputy.mjs';

const total = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.argv[3] ?? 32);
// BENCH_PEOPLE connected people (default the four demo ones); BENCH_APP_LATENCY_MS: how long
// the fake Salesforce takes to answer (Salesforce's REST API: 100-500 ms); BENCH_WARMUP jobs
// run first and are left out of the figures.
const people = Number(process.env.BENCH_PEOPLE ?? 4);
const appLatencyMs = Number(process.env.BENCH_APP_LATENCY_MS ?? 0);
// BENCH_SLACK_LATENCY_MS: how long the Slack fake takes to answer (Slack: 50-300 ms).
const slackLatencyMs = Number(process.env.BENCH_SLACK_LATENCY_MS ?? 0);
const warmup = Number(process.env.BENCH_WARMUP ?? 0);
// BENCH_HANGING: that many ServiceNow incidents are asked for first, spread over the same
// people, and ServiceNow never answers (Deputy gives up on it after its 30 s deadline): the
// Salesforce jobs measured must not wait for them (bulkheads).
const hanging = Number(process.env.BENCH_HANGING ?? 0);
const users = people <= 4
  ? [['U0ALICE', 'alice'], ['U0BOB', 'bob'], ['U0CAROL', 'carol'], ['U0ADMIN', 'admin']].slice(0, people)
  : Array.from({ length: people }, (_, i) => [`U0P${String(i).padStart(4, '0')}`, `p${String(i).padStart(4, '0')}`]);

// BENCH_APP: "native" (bench/fake_app, the default when it is built) or "node" (the Node fake
// of the end-to-end tests, which tops out near 1,000 calls/s on one core and shares it with
// the Slack fake).
const appKind = process.env.BENCH_APP ?? (existsSync(FAKE_APP_BIN) ? 'native' : 'node');
// BENCH_SLACK: "native" (bench/slack_load, the default when it is built) sends the signed
// commands and is the response_url, so the Node process does not take a core away from Deputy;
// "node" uses the Slack fake of the end-to-end tests for both.
const SLACK_LOAD_BIN = resolve(process.env.DEPUTY_SLACK_LOAD_BIN ?? resolve(dirname(DEPUTY_BIN), '../bench/slack_load/deputy_slack_load'));
const slackKind = process.env.BENCH_SLACK ?? (existsSync(SLACK_LOAD_BIN) ? 'native' : 'node');
// BENCH_WORKERS: server.workers (default: Deputy's own, one per core).
const workers = process.env.BENCH_WORKERS ? Number(process.env.BENCH_WORKERS) : 'default';
// BENCH_SERVER_CONFIG: more lines under server: in Deputy's config, e.g. "  jobs_in_flight_per_app: 256\n".
const hangingDelay = { '/api/now': 120000 };
const appServer = appKind === 'native'
  ? (introspection) => new NativeApps({ ...introspection, delayMs: appLatencyMs, delayByPath: hanging > 0 ? hangingDelay : {} }).start()
  : undefined;
const stack = await startStack({ withApps: true, appServer, introspectionCacheMs: 60000, extraConfig: `server:\n${workers === 'default' ? '' : `  workers: ${workers}\n`}${process.env.BENCH_SERVER_CONFIG ?? ''}`, env: { DEPUTY_LOG_LEVEL: 'warn' } });
const { slack, apps, deputy } = stack;
let load;  // the native Slack side, when it is the one
try {
  for (const [user, account] of users) {
    slack.users[user] ??= { name: account, realName: account, email: `${account}@example.com` };
    stack.auth.accounts[account] ??= { email: `${account}@example.com`, email_verified: true, name: account };
  }
  for (const [user, account] of users) {
    for (const app of hanging > 0 ? ['salesforce', 'servicenow'] : ['salesforce']) {
      const { url } = await connectLink(slack, user, app);
      const browser = new FetchBrowser();
      await browser.request(await browser.login(url, { login: account }));
    }
  }
  if (appKind === 'node') apps.delayMs = appLatencyMs;  // the native one was started with it
  // What the app saw: opportunities created, and hanging calls it holds.
  const appCounts = appKind === 'native'
    ? async () => { const s = await apps.stats(); return { created: s.created.Opportunity, hangingInFlight: s.in_flight['/api/now'] }; }
    : async () => ({ created: apps.recordsOf('Opportunity').length, hangingInFlight: apps.inFlight.get('/api/now')?.now ?? 0 });
  slack.delayMs = slackLatencyMs;
  // Final answers arrive at the Slack fake's response_url; each lane waits for its own.
  const waitFinal = (responseId) => slack.waitForCall((c) => c.method === 'response_url' && c.id === responseId, { timeoutMs: 30000 });

  const pid = deputy.child.pid;
  const { readFileSync } = await import('node:fs');
  const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  const ticksOf = (p) => { const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
  const cpuTicks = () => ticksOf(pid);
  // The others on the same cores: this Node process (the load, Slack and the authorization
  // server) and the native app, when it is the one.
  const appTicks = () => (appKind === 'native' ? ticksOf(apps.child.pid) : 0);
  const benchCpu0 = process.cpuUsage();

  // Runs jobs [from, to) with `concurrency` lanes; returns each job's time from command to answer.
  async function phase(from, to) {
    const latencies = [];
    let next = from;
    async function lane() {
      while (next < to) {
        const i = next++;
        const [user] = users[i % users.length];
        const start = performance.now();
        const sent = await slack.sendSlashCommand({ user, text: `create opportunity bench-${i} ${i} 2026-12-31` });
        if (sent.status !== 200) throw new Error(`command ${i} got ${sent.status}`);
        const reply = await waitFinal(sent.responseId);
        if (!/Created opportunity/.test(reply.body.text)) throw new Error(`job ${i}: ${reply.body.text}`);
        latencies.push(performance.now() - start);
        // The fake keeps every call; dropping answered ones keeps its lookups short.
        slack.calls = slack.calls.filter((c) => c !== reply);
      }
    }
    await Promise.all(Array.from({ length: concurrency }, lane));
    return latencies;
  }

  // The native Slack side runs the warm-up at once, then waits for a line before the measured jobs.
  if (slackKind === 'native') {
    load = spawn(SLACK_LOAD_BIN, ['--deputy-url', deputy.url, '--signing-secret', slack.signingSecret, '--team', slack.teamId,
      '--app', slack.apiAppId, '--users', users.map(([id, name]) => `${id}:${name}`).join(','),
      '--text', 'create opportunity bench-{i} {i} 2026-12-31', '--expect', 'Created opportunity',
      '--jobs', String(total), '--warmup', String(warmup), '--concurrency', String(concurrency),
      '--slack-delay-ms', String(slackLatencyMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise((_, reject) => load.once('exit', (code) => reject(new Error(`${SLACK_LOAD_BIN} exited with ${code}`))));
    exited.catch(() => {});
    const lines = createInterface({ input: load.stdout })[Symbol.asyncIterator]();
    load.nextLine = async () => JSON.parse((await Promise.race([lines.next(), exited])).value);
    await load.nextLine();  // {"event":"warm"}
  } else if (warmup > 0) await phase(0, warmup);
  if (hanging > 0) {
    if (appKind === 'node') apps.delayByPath = hangingDelay;
    for (let i = 0; i < hanging; i++) {
      const [user] = users[i % users.length];
      const sent = await slack.sendSlashCommand({ user, text: `create incident "hanging ${i}"` });
      if (sent.status !== 200) throw new Error(`hanging command ${i} got ${sent.status}`);
    }
    const deadline = Date.now() + 10000;
    while ((await appCounts()).hangingInFlight < hanging && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
  const hangingInFlight = (await appCounts()).hangingInFlight;
  slack.clear();
  let peakRss = rssKb();
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, rssKb()); }, 50);
  const ticks0 = cpuTicks();
  const appTicks0 = appTicks();
  const benchCpuStart = process.cpuUsage(benchCpu0);
  const loadTicks0 = load ? ticksOf(load.pid) : 0;
  const t0 = performance.now();
  let latencies, seconds, answeredTwice;
  if (load) {
    load.stdin.write('go\n');
    const measured = await load.nextLine();
    seconds = measured.seconds;
    latencies = null;
    answeredTwice = measured.answered_twice;
    load.measured = measured;
  } else {
    latencies = await phase(warmup, warmup + total);
    seconds = (performance.now() - t0) / 1000;
  }
  clearInterval(rssTimer);
  const cpuSeconds = (cpuTicks() - ticks0) / 100;
  const appCpuSeconds = (appTicks() - appTicks0) / 100;
  const benchCpuEnd = process.cpuUsage(benchCpu0);
  const benchCpuSeconds = (benchCpuEnd.user + benchCpuEnd.system - benchCpuStart.user - benchCpuStart.system) / 1e6;
  const loadCpuSeconds = load ? (ticksOf(load.pid) - loadTicks0) / 100 : 0;
  let percentiles;
  if (load) {
    const { p50_ms, p90_ms, p99_ms, max_ms } = load.measured;
    percentiles = { p50_ms, p90_ms, p99_ms, max_ms };
    load.kill('SIGTERM');
  } else {
    latencies.sort((a, b) => a - b);
    const pct = (p) => Number(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1));
    percentiles = { p50_ms: pct(50), p90_ms: pct(90), p99_ms: pct(99), max_ms: Number(latencies[latencies.length - 1].toFixed(1)) };
  }
  const { created, hangingInFlight: hangingAtEnd } = await appCounts();
  // Why jobs waited in the queue (a full bulkhead, a rate limit): the first thing to read when p99 moves.
  const metrics = await (await fetch(`${deputy.url}/metrics`)).text();
  const deferred = {};
  for (const [, reason, value] of metrics.matchAll(/^deputy_jobs_deferred_total\{reason="([^"]+)"\} (\d+)/gm)) deferred[reason] = Number(value);
  if (created !== total + warmup) throw new Error(`expected ${total + warmup} opportunities, found ${created}`);
  const result = {
    jobs: total, warmup, concurrency, ...(hanging > 0 ? { hanging, hanging_in_flight_at_start: hangingInFlight, hanging_in_flight_at_end: hangingAtEnd } : {}), app: appKind, workers, people: users.length, app_latency_ms: appLatencyMs, slack_latency_ms: slackLatencyMs, seconds: Number(seconds.toFixed(2)), jobs_per_second: Number((total / seconds).toFixed(1)),
    ...percentiles, deferred, deputy_peak_rss_mb: Number((peakRss / 1024).toFixed(1)),
    deputy_cpu_seconds: cpuSeconds, deputy_cpu_percent: Number(((cpuSeconds / seconds) * 100).toFixed(0)),
    deputy_cpu_us_per_job: Math.round((cpuSeconds / total) * 1e6),
    // A response_url call Slack recorded twice reached it once before Deputy gave up on it.
    response_url_recorded_twice: load ? answeredTwice : slack.calls.filter((c) => c.method === 'response_url').length,
    slack: slackKind,
    fakes_cpu_percent: {
      node: Number(((benchCpuSeconds / seconds) * 100).toFixed(0)),
      ...(appKind === 'native' ? { app: Number(((appCpuSeconds / seconds) * 100).toFixed(0)) } : {}),
      ...(load ? { slack: Number(((loadCpuSeconds / seconds) * 100).toFixed(0)) } : {}),
    },
  };
  console.log(JSON.stringify(result));
  // BENCH_LOG=file: Deputy's warnings and errors of the run, to read where a tail came from.
  if (process.env.BENCH_LOG) (await import('node:fs')).writeFileSync(process.env.BENCH_LOG, deputy.logs);
} catch (error) {
  load?.kill('SIGTERM');
  if (deputy.exited) console.error(`deputy exited:\n${deputy.logs.split('\n').slice(-30).join('\n')}`);
  throw error;
} finally {
  await stack.stop();
}
