// End-to-end jobs per second of 1 and of 3 Deputy processes on one PostgreSQL, behind nginx
// (tests/support/cluster.mjs), with the latencies real services have. Run on demand:
//
//   DEPUTY_BIN=build-release/src/deputy scripts/with-postgres bash -c \
//     'DEPUTY_E2E_POSTGRES_URL="$DEPUTY_TEST_POSTGRES_URL" node bench/cluster/cluster.mjs'
//
// BENCH_SIZES (default "1,3"), BENCH_JOBS (3000), BENCH_CONCURRENCY (300), BENCH_WARMUP (300),
// BENCH_APP_LATENCY_MS (250: Salesforce's REST API takes 100-500 ms), BENCH_SLACK_LATENCY_MS
// (100). Prints one JSON line per size: jobs/s, latency from command to answer, and CPU per
// job of the Deputy processes, of PostgreSQL and of nginx (the fakes and the load run in this
// Node process and are reported apart).
import { readFileSync, readdirSync } from 'node:fs';
import { FetchBrowser } from '../../tests/support/auth-server.mjs';
import { startCluster } from '../../tests/support/cluster.mjs';
import { connectLink } from '../../tests/support/stack.mjs';

const sizes = (process.env.BENCH_SIZES ?? '1,3').split(',').map(Number);
const total = Number(process.env.BENCH_JOBS ?? 3000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 300);
const warmup = Number(process.env.BENCH_WARMUP ?? 300);
const appLatencyMs = Number(process.env.BENCH_APP_LATENCY_MS ?? 250);
const slackLatencyMs = Number(process.env.BENCH_SLACK_LATENCY_MS ?? 100);

const PEOPLE = ['alice', 'bob', 'carol', 'dave', 'erin'].map((login) => ({ slack: `U0${login.toUpperCase()}`, login }));
const users = Object.fromEntries(PEOPLE.map((p) => [p.slack, { name: p.login, realName: p.login, email: `${p.login}@example.com` }]));
const accounts = Object.fromEntries(PEOPLE.map((p) => [p.login, { email: `${p.login}@example.com`, email_verified: true, name: p.login }]));

const ticksOf = (pid) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;  // gone (a PostgreSQL backend that ended)
  }
};
const pidsNamed = (name) => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name; } catch { return false; }
}).map(Number);
const ticksOfAll = (pids) => pids.reduce((sum, pid) => sum + ticksOf(pid), 0);

async function runSize(size) {
  // Per-person limits are per process: lifted, so that the figure is the processes' and not the
  // bulkhead's (five people would otherwise cap 1 process at 80 calls in flight, 3 at 240).
  const cluster = await startCluster({ size, users, accounts, logLevel: 'warn', extraConfig: 'server:\n  jobs_in_flight_per_person: 1024\n' });
  const { slack, apps } = cluster;
  try {
    for (const person of PEOPLE) {
      const { url } = await connectLink(slack, person.slack, 'salesforce');
      const browser = new FetchBrowser();
      await browser.request(await browser.login(url, { login: person.login }));
    }
    apps.delayMs = appLatencyMs;
    slack.delayMs = slackLatencyMs;
    const waitFinal = (responseId) => slack.waitForCall((c) => c.method === 'response_url' && c.id === responseId, { timeoutMs: 60000 });
    async function phase(from, to) {
      const latencies = [];
      let next = from;
      async function lane() {
        while (next < to) {
          const i = next++;
          const person = PEOPLE[i % PEOPLE.length];
          const start = performance.now();
          const sent = await slack.sendSlashCommand({ user: person.slack, text: `create opportunity bench-${i} ${i} 2026-12-31` });
          if (sent.status !== 200) throw new Error(`command ${i} got ${sent.status}`);
          const reply = await waitFinal(sent.responseId);
          if (!/Created opportunity/.test(reply.body.text)) throw new Error(`job ${i}: ${reply.body.text}`);
          latencies.push(performance.now() - start);
          slack.calls = slack.calls.filter((c) => c !== reply);
        }
      }
      await Promise.all(Array.from({ length: concurrency }, lane));
      return latencies;
    }
    await phase(0, warmup);
    slack.clear();
    const deputies = cluster.running().map((i) => cluster.pid(i));
    const postgres = pidsNamed('postgres');
    const nginx = [...pidsNamed('nginx')];
    const before = { deputy: ticksOfAll(deputies), postgres: ticksOfAll(postgres), nginx: ticksOfAll(nginx), node: process.cpuUsage() };
    const t0 = performance.now();
    const latencies = await phase(warmup, warmup + total);
    const seconds = (performance.now() - t0) / 1000;
    // Backends come and go; those that ended during the run are missed, so PostgreSQL's figure is a floor.
    const after = { deputy: ticksOfAll(deputies), postgres: ticksOfAll(postgres), nginx: ticksOfAll(nginx), node: process.cpuUsage(before.node) };
    latencies.sort((a, b) => a - b);
    const pct = (p) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]);
    const created = apps.recordsOf('Opportunity').length;
    if (created !== total + warmup) throw new Error(`expected ${total + warmup} opportunities, found ${created}`);
    const us = (ticks) => Math.round(((ticks / 100) / total) * 1e6);
    return {
      processes: size, jobs: total, concurrency, app_latency_ms: appLatencyMs, slack_latency_ms: slackLatencyMs,
      seconds: Number(seconds.toFixed(2)), jobs_per_second: Number((total / seconds).toFixed(1)), p50_ms: pct(50), p99_ms: pct(99),
      cpu_us_per_job: {
        deputy: us(after.deputy - before.deputy), postgres: us(after.postgres - before.postgres), nginx: us(after.nginx - before.nginx),
        node_fakes_and_load: Math.round((after.node.user + after.node.system) / total),
      },
    };
  } finally {
    await cluster.shutdown();
  }
}

for (const size of sizes) console.log(JSON.stringify(await runSize(size)));
