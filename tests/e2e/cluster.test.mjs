// Several Deputy processes on one PostgreSQL database, behind nginx, take over each other's work
// in seconds: a process killed (-9), stopped (SIGTERM) or frozen (SIGSTOP) under load loses no
// command, repeats no app call, and answers every command once; a renewal of one person's
// token is made once across all of them.
//
// Contract (server side): `server: { heartbeat_seconds: 2, takeover_seconds: 10 }` by default;
// a process that has not heartbeated for takeover_seconds (by PostgreSQL's clock) is taken over
// by another (its processes row gets ended_at; its claims and running jobs go back to the queue;
// a step that may have reached the app is reported as unknown outcome, never repeated); SIGTERM
// hands everything back at once; GET /readyz is 200 `ready` while the process holds its
// heartbeat; every /metrics sample carries process="<host>:<pid>".
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { FetchBrowser } from '../support/auth-server.mjs';
import { SALESFORCE_BASE } from '../support/fake-apps.mjs';
import { eventually, sleep } from '../support/deputy.mjs';
import { connectLink } from '../support/stack.mjs';
import { startCluster, clusterSkipReason, paced, Answers } from '../support/cluster.mjs';

const FINAL = /Created opportunity|cannot tell whether it happened/;
const CREATED = /Created opportunity \*([^*]+)\*.*`([^`]+)`/;
const IN_DOUBT = /Deputy stopped while step \*create\* was talking to/;

// Slack people and their accounts at the authorization server (the same email in both).
const PEOPLE = [
  { slack: 'U0ALICE', login: 'alice' },
  { slack: 'U0BOB', login: 'bob' },
  { slack: 'U0CAROL', login: 'carol' },
  { slack: 'U0DAVE', login: 'dave' },
  { slack: 'U0ERIN', login: 'erin' },
];
const USERS = {
  U0DAVE: { name: 'dave', realName: 'Dave Example', email: 'dave@example.com' },
  U0ERIN: { name: 'erin', realName: 'Erin Example', email: 'erin@example.com' },
};
const ACCOUNTS = {
  dave: { email: 'dave@example.com', email_verified: true, name: 'Dave Example' },
  erin: { email: 'erin@example.com', email_verified: true, name: 'Erin Example' },
};

const skip = clusterSkipReason();

/** Each person connects Salesforce through nginx: connect link in a DM, login, callback. */
async function connectPeople(cluster, people) {
  const { slack } = cluster;
  for (const person of people) {
    const { url } = await connectLink(slack, person.slack, 'salesforce');
    assert.ok(url.startsWith(cluster.url), `the connect link is on the public (nginx) URL: ${url}`);
    const browser = new FetchBrowser();
    const back = await browser.login(url, { login: person.login });
    const page = await browser.request(back);
    assert.equal(page.status, 200, `${person.login}'s callback page: ${page.text.slice(0, 200)}`);
    await slack.waitForCall((c) => c.method === 'chat.postMessage' && [slack.dmChannelOf(person.slack), person.slack].includes(c.body.channel) &&
      /Connected to Salesforce/.test(c.body.text ?? ''), { timeoutMs: 10000 });
  }
}

/** One signed `/deputy create opportunity <name> 1 2026-12-31` as `person`, through nginx. */
async function create(slack, person, name) {
  const responseId = `R-${name}`;
  const sentAt = Date.now();
  try {
    const r = await slack.sendSlashCommand({ user: person.slack, text: `create opportunity ${name} 1 2026-12-31`, responseId });
    return { name, person, responseId, sentAt, ackedAt: Date.now(), status: r.status };
  } catch (error) {
    return { name, person, responseId, sentAt, ackedAt: Date.now(), status: 0, error: String(error) };
  }
}

const inFlightAtApp = (apps) => apps.inFlight.get(SALESFORCE_BASE)?.now ?? 0;

/**
 * What became of every command: its final answers (created or unknown outcome), the records
 * the app holds under its name, and whether each was made as the person who asked.
 */
function judge(commands, answers, apps) {
  const records = new Map();
  for (const r of apps.recordsOf('Opportunity')) records.set(r.fields.Name, [...(records.get(r.fields.Name) ?? []), r]);
  return commands.map((c) => {
    const finals = answers.of(c.responseId, FINAL);
    const distinct = [...new Set(finals.map((a) => a.text))];
    const first = finals[0];
    return {
      ...c,
      finals,
      distinct,
      first,
      created: first ? CREATED.exec(first.text) : null,
      inDoubt: first ? IN_DOUBT.test(first.text) : false,
      records: records.get(c.name) ?? [],
    };
  });
}

/**
 * The checks every scenario shares: each command answered once, by `deadline`; nothing made
 * twice; every record made as its asker; an answer "created" only for a record that exists,
 * with its id; unknown outcome only in the wording for a step that may have reached the app.
 *
 * Identical copies of one answer only where `repeatAllowed` says. Deputy tells the person first
 * and records that it did after, so an answer already on its way to Slack when its process died
 * is sent again by whoever takes the job over (Slack offers no way to post a message once
 * whatever the retries). The Slack fake stamps an answer when its loop gets to the request,
 * which under this load can be well after the process that sent it was killed, so the tests
 * allow a repeat whose first copy came before the takeover and whose others came after it, and
 * no more repeats than the dead process had jobs running.
 */
function checkOutcomes(judged, { deadline, repeatAllowed } = {}) {
  const problems = [];
  let repeated = 0;
  for (const j of judged) {
    if (j.status !== 200) continue;  // not acknowledged: Slack would retry it
    if (!j.first) { problems.push(`${j.name}: no final answer`); continue; }
    if (j.distinct.length > 1) problems.push(`${j.name}: ${j.distinct.length} different final answers: ${j.distinct.join(' | ')}`);
    if (j.finals.length > 1) {
      const mayRepeat = Boolean(repeatAllowed?.(j));
      if (!mayRepeat) problems.push(`${j.name}: answered ${j.finals.length} times (at ${j.finals.map((a) => a.at).join(", ")})`);
      else repeated += 1;
    }
    if (deadline && j.first.at > deadline) problems.push(`${j.name}: answered ${j.first.at - deadline} ms after the deadline`);
    if (j.records.length > 1) problems.push(`${j.name}: created ${j.records.length} times`);
    for (const r of j.records) if (r.createdBy !== j.person.login) problems.push(`${j.name}: created by ${r.createdBy}, asked by ${j.person.login}`);
    if (j.created) {
      if (j.created[1] !== j.name) problems.push(`${j.name}: answered for ${j.created[1]}`);
      if (j.records.length !== 1 || j.records[0].id !== j.created[2]) problems.push(`${j.name}: reported created as ${j.created[2]}, the app holds ${j.records.map((r) => r.id).join(', ') || 'nothing'}`);
    } else if (!j.inDoubt) {
      problems.push(`${j.name}: final answer is neither created nor the unknown-outcome message: ${j.first.text}`);
    }
  }
  return { problems, repeated };
}

function summary(judged) {
  const acked = judged.filter((j) => j.status === 200).length;
  const created = judged.filter((j) => j.created).length;
  const inDoubt = judged.filter((j) => j.inDoubt).length;
  const inDoubtReached = judged.filter((j) => j.inDoubt && j.records.length > 0).length;
  return { acked, created, inDoubt, inDoubtReached };
}

function quantile(values, q) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Jobs finished by each running process since `since` (its deputy_jobs_finished_total). */
async function finishedByProcess(cluster, indexes = cluster.running()) {
  const out = {};
  for (const i of indexes) out[i] = await cluster.metric(i, 'deputy_jobs_finished_total').catch(() => NaN);
  return out;
}

/** Which process holds running jobs now, by the jobs' owner epoch (best effort: { pid: count }). */
async function runningByPid(cluster) {
  try {
    const rows = await cluster.query("SELECT p.pid, count(*)::int AS running FROM jobs j JOIN processes p ON p.epoch = j.owner_epoch WHERE j.state = 'running' GROUP BY p.pid");
    return Object.fromEntries(rows.map((r) => [Number(r.pid), r.running]));
  } catch {
    return {};
  }
}

describe('several Deputy processes on one PostgreSQL', { skip }, () => {
  describe('default timings (heartbeat 2 s, takeover 10 s)', () => {
    let cluster;

    before(async () => {
      cluster = await startCluster({ users: USERS, accounts: ACCOUNTS });
      await connectPeople(cluster, PEOPLE);
    });

    after(async () => {
      cluster?.saveLogs('default');
      await cluster?.stop();
    });

    test('each process heartbeats, is ready and labels its metrics; all share one keyring', async (t) => {
      // One keyring file, the cluster's; none in the processes' own folders.
      assert.ok(existsSync(cluster.keysFile), 'the first process created the shared keyring');
      for (const d of cluster.deputies) assert.ok(!existsSync(join(d.dir, 'deputy.keys')), `no keyring of its own in ${d.dir}`);

      const pids = cluster.deputies.map((_, i) => cluster.pid(i));
      const live = async () => (await cluster.processes()).filter((r) => r.ended_at === null && pids.includes(r.pid));
      const first = await eventually(async () => ((await live()).length === 3 ? live() : null), { timeoutMs: 10000, intervalMs: 200, message: 'a live processes row for each of the 3 processes' });
      for (const r of first) assert.equal(r.host, hostname(), `process ${r.pid}'s host`);
      // Heartbeats advance (every 2 s by default).
      await eventually(async () => {
        const now = await live();
        return now.length === 3 && now.every((r) => r.heartbeat_at > first.find((f) => f.epoch === r.epoch).heartbeat_at);
      }, { timeoutMs: 8000, intervalMs: 250, message: 'every process to heartbeat again' });
      const dbNow = await cluster.dbNow();
      const ages = (await live()).map((r) => dbNow - r.heartbeat_at);

      for (let i = 0; i < cluster.size; i += 1) {
        const ready = await cluster.get(i, '/readyz');
        assert.equal(ready.status, 200, `process ${i} /readyz`);
        assert.match(ready.text, /ready/);
        const metrics = await cluster.get(i, '/metrics');
        assert.equal(metrics.status, 200);
        const samples = metrics.text.split('\n').filter((l) => l && !l.startsWith('#'));
        const label = `process="${cluster.label(i)}"`;
        const unlabelled = samples.filter((l) => !l.includes(label));
        assert.ok(samples.length > 0, 'some samples');
        assert.deepEqual(unlabelled.slice(0, 5), [], `every sample of process ${i} carries ${label} (${unlabelled.length} of ${samples.length} do not)`);
      }
      t.diagnostic(`epochs ${first.map((r) => r.epoch).join(', ')}; heartbeat ages ${ages.join(', ')} ms by the database's clock`);
    });

    test('kill -9 of one process among 3 under 300 commands: every command answered once within 30 s, nothing done twice', { timeout: 150000 }, async (t) => {
      const { slack, apps } = cluster;
      const answers = new Answers(slack);
      const finishedBefore = await finishedByProcess(cluster);
      apps.delayMs = 200;
      const victim = 1;
      const victimPid = cluster.pid(victim);
      const total = 300;
      let kill;
      try {
        // 100 commands a second, spread over the five people, through nginx.
        const sending = paced(total, 100, (i) => create(slack, PEOPLE[i % PEOPLE.length], `k9-${String(i).padStart(3, '0')}-${PEOPLE[i % PEOPLE.length].login}`));
        await eventually(() => apps.recordsOf('Opportunity').filter((r) => r.fields.Name.startsWith('k9-')).length >= total / 3, { timeoutMs: 30000, message: 'a third of the commands done' });
        const runningAtKill = await runningByPid(cluster);
        kill = await cluster.kill9(victim);
        const createdAtKill = apps.recordsOf('Opportunity').filter((r) => r.fields.Name.startsWith('k9-')).length;
        const inFlightAtKill = inFlightAtApp(apps);
        const commands = await sending;
        const answeredAtKill = commands.filter((c) => answers.of(c.responseId, FINAL).some((a) => a.at <= kill.at)).length;
        assert.ok(createdAtKill < total, `the kill came too late (${createdAtKill} done)`);

        // Every acknowledged command gets its final answer within 30 s of the kill.
        const acked = commands.filter((c) => c.status === 200);
        const deadline = kill.at + 30000;
        const allAnswered = await eventually(() => acked.every((c) => answers.of(c.responseId, FINAL).length > 0), { timeoutMs: Math.max(1000, deadline - Date.now()), intervalMs: 100, message: 'every command answered' }).catch(() => false);
        const lastAnswer = Math.max(...acked.map((c) => answers.of(c.responseId, FINAL)[0]?.at ?? Infinity));
        // A moment for answers that must not come (a second answer, a repeated job).
        await sleep(2000);

        // The killed run was taken over: its processes row ended by another process.
        const row = await eventually(async () => {
          const r = await cluster.processRow(victim, victimPid);
          return r?.ended_at ? r : null;
        }, { timeoutMs: Math.max(1000, kill.at + 20000 - Date.now()), intervalMs: 250, message: 'the killed process\'s row to get ended_at' }).catch(() => null);

        const judged = judge(commands, answers, apps);
        const takeoverAt = row?.ended_at ?? Infinity;
        const repeatAllowed = (j) => j.finals[0].at < takeoverAt && j.finals.slice(1).every((a) => a.at >= takeoverAt);
        const { problems, repeated } = checkOutcomes(judged, { deadline, repeatAllowed });
        const s = summary(judged);
        const finishedAfter = await finishedByProcess(cluster);
        const acks = commands.map((c) => c.ackedAt - c.sentAt);
        t.diagnostic(`${total} sent, ${s.acked} acked (ack p50 ${quantile(acks, 0.5)} ms, max ${Math.max(...acks)} ms); at the kill: ${createdAtKill} created, ${answeredAtKill} answered, ${inFlightAtKill} calls in flight at the app, running jobs by pid ${JSON.stringify(runningAtKill)} (victim ${victimPid})`);
        t.diagnostic(`all answered: ${allAnswered ? `yes, the last ${lastAnswer - kill.at} ms after the kill` : 'NO'}; ${s.created} created, ${s.inDoubt} unknown outcome (${s.inDoubtReached} of them had reached the app), ${repeated} identical answers sent again (in flight at the kill)`);
        t.diagnostic(`takeover: ${row ? `ended_at ${row.ended_at - kill.at} ms after the kill (epoch ${row.epoch})` : 'NOT SEEN'}; jobs finished by process before/after: ${JSON.stringify(finishedBefore)} / ${JSON.stringify(finishedAfter)}; app POSTs ${apps.calls.filter((c) => c.method === 'POST').length}`);

        assert.equal(s.acked, total, `every command acknowledged through nginx (${commands.filter((c) => c.status !== 200).map((c) => `${c.name}: ${c.status} ${c.error ?? ''}`).slice(0, 5).join('; ')})`);
        assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
        assert.ok(allAnswered, 'every command answered within 30 s of the kill');
        assert.ok(s.inDoubt <= total - answeredAtKill, 'unknown outcome only for jobs unfinished at the kill');
        assert.ok(apps.calls.filter((c) => c.method === 'POST').length <= total, 'no app call repeated');
        assert.ok(row, 'the killed process\'s processes row was ended (taken over) within 20 s');
        assert.ok(repeated <= (runningAtKill[victimPid] ?? 0), `repeated answers (${repeated}) only for jobs the killed process was running (${runningAtKill[victimPid] ?? 0})`);
        assert.ok(row.ended_at >= kill.at - 1000, 'ended after the kill');
      } finally {
        apps.delayMs = 0;
        answers.unsubscribe();
        if (kill) await cluster.start(victim).catch((e) => t.diagnostic(`restart failed: ${e.message}`));
      }
    });
  });

  test('an expired token is renewed once for 20 jobs spread over 3 processes', { timeout: 90000 }, async (t) => {
    // Access tokens that last 4 s (Deputy renews one when a quarter of its life is left).
    const cluster = await startCluster({ accessTokenTtl: 4 });
    try {
      const { slack, auth, apps } = cluster;
      await connectPeople(cluster, [PEOPLE[0]]);
      // Alice's access token has expired at the authorization server.
      const token = auth.issued.accessTokens.at(-1);
      await eventually(async () => !(await auth.introspect(token)).active, { timeoutMs: 10000, intervalMs: 200, message: 'the access token to expire' });
      const refreshesBefore = auth.countTokenRequests('refresh_token');
      const errorsBefore = auth.tokenRequests.filter((r) => r.error || r.failed).length;
      const finishedBefore = await finishedByProcess(cluster);
      const answers = new Answers(slack);

      // 20 at once through nginx: round robin hands them to the 3 processes in turn.
      const commands = await Promise.all(Array.from({ length: 20 }, (_, i) => create(slack, PEOPLE[0], `renew-${String(i).padStart(2, '0')}`)));
      assert.ok(commands.every((c) => c.status === 200), 'every command acknowledged');
      const allAnswered = await eventually(() => commands.every((c) => answers.of(c.responseId, FINAL).length > 0), { timeoutMs: 20000, intervalMs: 100, message: 'every job answered' }).catch(() => false);
      await sleep(500);
      const finishedAfter = await finishedByProcess(cluster);
      const ranBy = Object.fromEntries(Object.keys(finishedAfter).map((i) => [i, finishedAfter[i] - finishedBefore[i]]));
      const upstreams = cluster.nginx.accessLog().split('\n').filter((l) => l.includes('POST /slack/events')).slice(-20)
        .reduce((m, l) => { const u = /upstream=(\S+)/.exec(l)?.[1]; m[u] = (m[u] ?? 0) + 1; return m; }, {});
      const refreshes = auth.countTokenRequests('refresh_token') - refreshesBefore;
      const judged = judge(commands, answers, apps);
      const s = summary(judged);
      t.diagnostic(`${refreshes} refresh-token grant(s), ${auth.tokenRequests.filter((r) => r.error || r.failed).length - errorsBefore} refused; ${s.created} of 20 created; deliveries by upstream ${JSON.stringify(upstreams)}; jobs finished by process ${JSON.stringify(ranBy)}`);

      assert.ok(allAnswered, 'every job answered');
      assert.equal(s.created, 20, `all 20 created (${judged.filter((j) => !j.created).map((j) => `${j.name}: ${j.first?.text ?? 'no answer'}`).slice(0, 3).join('; ')})`);
      const { problems } = checkOutcomes(judged);
      assert.deepEqual(problems, []);
      assert.equal(refreshes, 1, 'exactly one refresh-token grant for the 20 jobs across the processes');
      assert.equal(auth.tokenRequests.filter((r) => r.error || r.failed).length - errorsBefore, 0, 'no token request refused (a rotated refresh token used twice would be)');
      assert.ok(Object.values(ranBy).filter((n) => n > 0).length >= 2, `the jobs ran on several processes (${JSON.stringify(ranBy)})`);
    } finally {
      cluster.saveLogs('renewal');
      await cluster.stop();
    }
  });

  test('SIGTERM hands everything back at once: every command answered once, long before takeover', { timeout: 120000 }, async (t) => {
    // Takeover only after 120 s: the hand-back alone can explain prompt answers. Calls of 1.5 s,
    // longer than the grace a stopping process gives the work in flight.
    const cluster = await startCluster({ users: USERS, accounts: ACCOUNTS, extraConfig: 'server:\n  takeover_seconds: 120\n' });
    try {
      const { slack, apps } = cluster;
      await connectPeople(cluster, PEOPLE);
      const answers = new Answers(slack);
      apps.delayMs = 1500;
      const total = 60;
      // 30 a second for 2 s; the SIGTERM lands while they still arrive.
      const sending = paced(total, 30, (i) => create(slack, PEOPLE[i % PEOPLE.length], `term-${String(i).padStart(2, '0')}-${PEOPLE[i % PEOPLE.length].login}`));
      await eventually(() => inFlightAtApp(apps) >= 15, { timeoutMs: 15000, message: 'calls in flight at the app' });
      // The victim: the process holding the most running jobs, when the database tells.
      const running = await runningByPid(cluster);
      let victim = 1;
      const busiest = Object.entries(running).sort((a, b) => b[1] - a[1])[0];
      if (busiest) victim = Math.max(0, cluster.deputies.findIndex((_, i) => cluster.pid(i) === Number(busiest[0])));
      const victimPid = cluster.pid(victim);
      const inFlightAtStop = inFlightAtApp(apps);
      const stopping = cluster.stop(victim);
      const stopAt = Date.now();
      const commands = await sending;
      const exit = await stopping;
      const acked = commands.filter((c) => c.status === 200);
      const deadline = stopAt + 20000;
      const allAnswered = await eventually(() => acked.every((c) => answers.of(c.responseId, FINAL).length > 0), { timeoutMs: Math.max(1000, deadline - Date.now()), intervalMs: 100, message: 'every command answered' }).catch(() => false);
      const lastAnswer = Math.max(...acked.map((c) => answers.of(c.responseId, FINAL)[0]?.at ?? Infinity));
      await sleep(2000);  // answers that must not come
      const row = await cluster.processRow(victim, victimPid);
      const judged = judge(commands, answers, apps);
      const { problems } = checkOutcomes(judged, { deadline });
      const s = summary(judged);
      const answeredAfterStop = judged.filter((j) => j.first && j.first.at > stopAt).length;
      t.diagnostic(`SIGTERM to process ${victim} (pid ${victimPid}) with ${inFlightAtStop} calls in flight at the app, running jobs by pid ${JSON.stringify(running)}; it exited ${exit.exitedAt - stopAt} ms later with ${JSON.stringify({ code: exit.code, signal: exit.signal, late: exit.late ?? false })}`);
      t.diagnostic(`${s.acked} of ${total} acked; ${answeredAfterStop} answered after the SIGTERM, all answered: ${allAnswered ? `yes, the last ${lastAnswer - stopAt} ms after it` : 'NO'}; ${s.created} created, ${s.inDoubt} unknown outcome (${s.inDoubtReached} had reached the app); processes row ${row ? `ended_at ${row.ended_at === null ? 'NULL' : `${row.ended_at - stopAt} ms after the SIGTERM`}` : 'missing'}`);

      assert.equal(s.acked, total, `every command acknowledged through nginx (${commands.filter((c) => c.status !== 200).map((c) => `${c.name}: ${c.status} ${c.error ?? ''}`).slice(0, 5).join('; ')})`);
      assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
      assert.ok(allAnswered, 'every command answered within 20 s of the SIGTERM (takeover is 120 s)');
      assert.ok(apps.calls.filter((c) => c.method === 'POST').length <= total, 'no app call repeated');
      assert.equal(exit.code, 0, 'the stopped process exited cleanly');
      assert.ok(!exit.late, 'the stopped process exited within 60 s');
      assert.ok(row, 'the stopped process has a processes row');
      assert.ok(row.ended_at !== null, 'its processes row has ended_at');
    } finally {
      cluster.apps.delayMs = 0;
      cluster.saveLogs('sigterm');
      await cluster.stop();
    }
  });

  test('SIGSTOP for 30 s under load: the others take over, nothing is done or answered twice', { timeout: 150000 }, async (t) => {
    const cluster = await startCluster({ users: USERS, accounts: ACCOUNTS });
    const victim = 2;
    let paused = false;
    try {
      const { slack, apps } = cluster;
      await connectPeople(cluster, PEOPLE);
      const answers = new Answers(slack);
      apps.delayMs = 1000;
      const total = 100;
      // 5 a second for 20 s; the pause comes once 20 are sent, and lasts beyond the last.
      let sentCount = 0;
      const sending = paced(total, 5, (i) => { sentCount += 1; return create(slack, PEOPLE[i % PEOPLE.length], `stop-${String(i).padStart(3, '0')}-${PEOPLE[i % PEOPLE.length].login}`); });
      await eventually(() => sentCount >= 20 && inFlightAtApp(apps) >= 3, { timeoutMs: 20000, message: 'load with calls in flight' });
      const victimPid = cluster.pid(victim);
      const runningAtPause = await runningByPid(cluster);
      const pause = cluster.pause(victim);
      paused = true;
      const answeredAtPause = new Set(answers.byId.keys());

      // Taken over while frozen: its row ended within takeover (10 s) and a few heartbeats.
      const row = await eventually(async () => {
        const r = await cluster.processRow(victim, victimPid);
        return r?.ended_at ? r : null;
      }, { timeoutMs: 20000, intervalMs: 250, message: 'the paused process\'s row to get ended_at' }).catch(() => null);
      const takenOverAt = Date.now();

      const commands = await sending;
      const acked = commands.filter((c) => c.status === 200);
      // Every command answered while the process is still frozen.
      const resumeDue = pause.at + 30000;
      const allAnswered = await eventually(() => acked.every((c) => answers.of(c.responseId, FINAL).length > 0), { timeoutMs: Math.max(1000, resumeDue - Date.now()), intervalMs: 100, message: 'every command answered' }).catch(() => false);
      const lastAnswer = Math.max(...acked.map((c) => answers.of(c.responseId, FINAL)[0]?.at ?? Infinity));
      const finalsBeforeResume = new Map(commands.map((c) => [c.responseId, answers.of(c.responseId, FINAL).length]));
      const waitMore = resumeDue - Date.now();
      if (waitMore > 0) await sleep(waitMore);
      const resume = cluster.resume(victim);
      paused = false;

      // Awake again: it finds its epoch taken over and must change and answer nothing it held.
      // Watched for two heartbeats and more: what it still had in memory would be sent by now.
      const readiness = [];
      const readyz = async () => (cluster.deputies[victim].exited ? 'exited'
        : cluster.get(victim, '/readyz').then((r) => `${r.status} ${r.text.trim()}`).catch((e) => `error ${e.message}`));
      while (Date.now() < resume.at + 5000) {
        const now = await readyz();
        if (readiness.at(-1) !== now) readiness.push(now);
        if (now === 'exited') break;
        await sleep(100);
      }
      const readyAfter = await readyz();
      const rowsAfter = (await cluster.processes()).filter((r) => r.pid === victimPid);

      const judged = judge(commands, answers, apps);
      const takeoverAt = row?.ended_at ?? Infinity;
      const repeatAllowed = (j) => j.finals[0].at < takeoverAt && j.finals.slice(1).every((a) => a.at >= takeoverAt && a.at < resume.at);
      const { problems, repeated } = checkOutcomes(judged, { repeatAllowed });
      const afterResume = judged.filter((j) => j.finals.some((a) => a.at >= resume.at) && finalsBeforeResume.get(j.responseId) > 0);
      const s = summary(judged);
      const acks = commands.map((c) => c.ackedAt - c.sentAt);
      t.diagnostic(`paused process ${victim} (pid ${victimPid}) after ${sentCount} sent, ${answeredAtPause.size} answered; running jobs by pid ${JSON.stringify(runningAtPause)}; ${row ? `taken over ${row.ended_at - pause.at} ms after the pause (seen ${takenOverAt - pause.at} ms)` : 'takeover NOT SEEN'}`);
      t.diagnostic(`${s.acked} of ${total} acked (ack p50 ${quantile(acks, 0.5)} ms, p99 ${quantile(acks, 0.99)} ms, max ${Math.max(...acks)} ms); all answered before the resume: ${allAnswered ? `yes, the last ${lastAnswer - pause.at} ms after the pause` : 'NO'}; ${s.created} created, ${s.inDoubt} unknown outcome (${s.inDoubtReached} had reached the app), ${repeated} identical answers sent again (in flight at the pause); after the resume: ${afterResume.length} answered again, /readyz ${readiness.join(' -> ')}; its processes rows ${JSON.stringify(rowsAfter.map((r) => ({ epoch: r.epoch, ended: r.ended_at !== null })))}`);

      assert.equal(s.acked, total, `every command acknowledged through nginx (${commands.filter((c) => c.status !== 200).map((c) => `${c.name}: ${c.status} ${c.error ?? ''}`).slice(0, 5).join('; ')})`);
      assert.deepEqual(afterResume.map((j) => `${j.name}: ${j.finals.at(-1).text}`).slice(0, 5), [], 'the resumed process answers nothing another already answered');
      assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
      assert.ok(row, 'the paused process was taken over (its processes row ended) within 20 s');
      assert.ok(allAnswered, 'every command answered while the process was frozen');
      // Ready only on a heartbeat it holds: not on the epoch that was taken over.
      if (readyAfter.startsWith('200')) {
        assert.ok(rowsAfter.some((r) => r.epoch !== row.epoch && r.ended_at === null), `ready after the resume, so it heartbeats under a new epoch (rows ${JSON.stringify(rowsAfter)})`);
      } else if (readyAfter !== 'exited') {
        assert.match(readyAfter, /^503 .*heartbeat/, 'not ready after the resume: 503 naming the heartbeat');
      }
      assert.ok(apps.calls.filter((c) => c.method === 'POST').length <= total, 'no app call repeated');
    } finally {
      if (paused) cluster.resume(victim);
      cluster.apps.delayMs = 0;
      cluster.saveLogs('sigstop');
      await cluster.stop();
    }
  });
});
