// End-to-end jobs per second: signed slash commands in, each one a personal-connection job
// (token decrypted from the vault) that calls the fake Salesforce and answers through
// response_url. Deputy runs as a process on SQLite; Slack, the authorization server and the
// app are the local fakes from tests/support, in this Node process.
// Usage: node bench/jobs/jobs.mjs [jobs] [concurrency]   (DEPUTY_BIN picks the binary)
import { FetchBrowser } from '../../tests/support/auth-server.mjs';
import { startStack, connectLink } from '../../tests/support/stack.mjs';

const total = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.argv[3] ?? 32);
const users = [['U0ALICE', 'alice'], ['U0BOB', 'bob'], ['U0CAROL', 'carol'], ['U0ADMIN', 'admin']];

const workers = Number(process.env.BENCH_WORKERS ?? 4);
const stack = await startStack({ withApps: true, introspectionCacheMs: 60000, extraConfig: `server:\n  workers: ${workers}\n`, env: { DEPUTY_LOG_LEVEL: 'warn' } });
const { slack, apps, deputy } = stack;
try {
  for (const [user, account] of users) {
    const { url } = await connectLink(slack, user, 'salesforce');
    const browser = new FetchBrowser();
    await browser.request(await browser.login(url, { login: account }));
  }
  // Final answers arrive at the Slack fake's response_url; count them as they come.
  const finished = new Set();
  const waitFinal = (responseId) => slack.waitForCall((c) => c.method === 'response_url' && c.id === responseId, { timeoutMs: 60000 });

  const latencies = [];
  let next = 0;
  const pid = deputy.child.pid;
  const { readFileSync } = await import('node:fs');
  const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  const cpuTicks = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
  let peakRss = rssKb();
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, rssKb()); }, 50);
  const ticks0 = cpuTicks();
  const t0 = performance.now();
  async function lane() {
    while (next < total) {
      const i = next++;
      const [user] = users[i % users.length];
      const start = performance.now();
      const sent = await slack.sendSlashCommand({ user, text: `create opportunity bench-${i} ${i} 2026-12-31` });
      if (sent.status !== 200) throw new Error(`command ${i} got ${sent.status}`);
      const reply = await waitFinal(sent.responseId);
      if (!/Created opportunity/.test(reply.body.text)) throw new Error(`job ${i}: ${reply.body.text}`);
      latencies.push(performance.now() - start);
      finished.add(i);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(rssTimer);
  const cpuSeconds = (cpuTicks() - ticks0) / 100;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(1);
  const created = apps.recordsOf('Opportunity').length;
  if (created !== total) throw new Error(`expected ${total} opportunities, found ${created}`);
  const result = {
    jobs: total, concurrency, workers, seconds: Number(seconds.toFixed(2)), jobs_per_second: Number((total / seconds).toFixed(1)),
    p50_ms: Number(pct(50)), p99_ms: Number(pct(99)), deputy_peak_rss_mb: Number((peakRss / 1024).toFixed(1)),
    deputy_cpu_seconds: cpuSeconds, deputy_cpu_percent: Number(((cpuSeconds / seconds) * 100).toFixed(0)),
  };
  console.log(JSON.stringify(result));
} finally {
  await stack.stop();
}
