// Several Deputy processes on one PostgreSQL database, behind nginx: the cast of the cluster
// end-to-end tests. Like startStack (stack.mjs): the Slack fake, the authorization server, the
// fake business apps and the example recipes; but N Deputy processes sharing ONE database,
// ONE keyring, one signing secret and bot token, and one public URL: nginx's, which spreads
// Slack's requests and the browsers' OAuth round trips over them (round robin), and sends a
// request a process failed (refused connection, reset, no answer within 5 s) to the next one.
// Deputy deduplicates Slack's deliveries, so resending a POST to /slack/events is safe.
//
// Needs DEPUTY_E2E_POSTGRES_URL (a server scripts/with-postgres started) and nginx
// (scripts/setup --test).
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SlackFake } from './slack-fake.mjs';
import { AuthServer } from './auth-server.mjs';
import { FakeApps } from './fake-apps.mjs';
import { Deputy, freePort, sleep } from './deputy.mjs';
import { EXAMPLE_RECIPES, SIGNING_SECRET, BOT_TOKEN, CLIENT_SECRET } from './stack.mjs';

const execFileAsync = promisify(execFile);

export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
export const E2E_POSTGRES_URL = process.env.DEPUTY_E2E_POSTGRES_URL;
const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;

/** Why the cluster tests cannot run here, or undefined when they can. */
export function clusterSkipReason() {
  if (!E2E_POSTGRES_URL) return 'several processes need PostgreSQL (DEPUTY_E2E_POSTGRES_URL is not set; SQLite is single-process)';
  return undefined;
}

async function psqlAt(url, sql) {
  const { stdout } = await execFileAsync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return stdout.trim();
}

/** `stop(child)` with a deadline: SIGKILL when it has not exited in time. */
async function waitExit(deputy, timeoutMs) {
  let timer;
  const late = new Promise((r) => { timer = setTimeout(() => r('late'), timeoutMs); });
  const result = await Promise.race([deputy.exitPromise, late]);
  clearTimeout(timer);
  if (result !== 'late') return result;
  deputy.child.kill('SIGCONT');
  deputy.child.kill('SIGKILL');
  return { ...(await deputy.exitPromise), late: true };
}

/** nginx as a child process (not a daemon), with everything it writes in its own folder. */
export class Nginx {
  constructor({ port, upstreams, dir }) {
    this.port = port;
    this.upstreams = upstreams;
    this.dir = dir;
    this.url = `http://127.0.0.1:${port}`;
  }

  config() {
    const d = this.dir;
    const servers = this.upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=5s;`).join('\n');
    // As root the master would hand the workers to `nobody`, which cannot write this folder.
    const user = process.getuid?.() === 0 ? 'user root root;' : '';
    return `daemon off;
${user}
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log info;
events { worker_connections 4096; }
http {
  log_format upstreams '$msec $request_method $uri $status upstream=$upstream_addr upstream_status=$upstream_status time=$request_time';
  access_log ${d}/access.log upstreams;
  client_body_temp_path ${d}/client_body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
  upstream deputy {
${servers}
  }
  server {
    listen 127.0.0.1:${this.port} backlog=4096;
    client_max_body_size 2m;
    location / {
      proxy_pass http://deputy;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      # A process that is gone (refused, reset) or stuck (no answer) hands the request on;
      # also POSTs: Deputy deduplicates Slack's deliveries.
      proxy_next_upstream error timeout non_idempotent;
      proxy_connect_timeout 1s;
      proxy_send_timeout 5s;
      proxy_read_timeout 5s;
    }
  }
}
`;
  }

  async start() {
    if (!existsSync(NGINX_BIN)) throw new Error(`nginx not found at ${NGINX_BIN}: run scripts/setup --test`);
    mkdirSync(this.dir, { recursive: true });
    this.confPath = join(this.dir, 'nginx.conf');
    writeFileSync(this.confPath, this.config());
    this.output = '';
    this.exited = false;
    this.child = spawn(NGINX_BIN, ['-p', `${this.dir}/`, '-e', join(this.dir, 'error.log'), '-c', this.confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d) => { this.output += d; });
    this.child.stderr.on('data', (d) => { this.output += d; });
    this.exitPromise = new Promise((r) => this.child.on('exit', (code, signal) => { this.exited = true; r({ code, signal }); }));
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`nginx exited during start:\n${this.output}\n${this.errorLog()}`);
      try {
        const r = await fetch(`${this.url}/healthz`);
        await r.text();
        if (r.status === 200) return this;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`nginx did not come up:\n${this.output}\n${this.errorLog()}`);
  }

  errorLog() {
    try { return readFileSync(join(this.dir, 'error.log'), 'utf8'); } catch { return ''; }
  }

  accessLog() {
    try { return readFileSync(join(this.dir, 'access.log'), 'utf8'); } catch { return ''; }
  }

  async stop() {
    if (!this.child || this.exited) return;
    this.child.kill('SIGTERM');  // fast shutdown
    let timer;
    await Promise.race([this.exitPromise, new Promise((r) => { timer = setTimeout(r, 5000); })]);
    clearTimeout(timer);
    if (!this.exited) {
      this.child.kill('SIGKILL');
      await this.exitPromise;
    }
  }
}

/**
 * Starts the Slack fake, the authorization server, the fake apps and `size` Deputy processes on
 * one fresh PostgreSQL database behind nginx.
 *
 * @param {object} [options]
 * @param {number} [options.size] how many Deputy processes (3)
 * @param {string} [options.extraConfig] more top-level YAML (e.g. `server:\n  takeover_seconds: 120\n`)
 * @param {Record<string,string>} [options.env] more DEPUTY_* variables for every process
 * @param {number} [options.accessTokenTtl] seconds the authorization server's access tokens last
 * @param {Record<string,string>} [options.recipes] more recipe files by name
 * @param {Record<string,string>} [options.appSettings] more settings for one fake app, by id
 * @param {Record<string,object>} [options.users] more Slack people (SlackFake's `users`)
 * @param {Record<string,object>} [options.accounts] more accounts at the authorization server
 * @param {string} [options.logLevel] DEPUTY_LOG_LEVEL of every process ('info': 300 jobs on 2 cores)
 */
export async function startCluster({ size = 3, extraConfig = '', env = {}, accessTokenTtl = 3600, recipes = {}, appSettings = {}, users = {}, accounts = {}, logLevel = 'info' } = {}) {
  if (!E2E_POSTGRES_URL) throw new Error(clusterSkipReason());
  const dir = mkdtempSync(join(tmpdir(), 'deputy-cluster-'));
  const parts = { dir };
  const cluster = new Cluster(parts);
  try {
    // The one database all processes share.
    const dbName = `e2e_cluster_${randomBytes(6).toString('hex')}`;
    await psqlAt(E2E_POSTGRES_URL, `CREATE DATABASE ${dbName}`);
    const dbUrl = new URL(E2E_POSTGRES_URL);
    dbUrl.pathname = `/${dbName}`;
    cluster.dbName = dbName;
    cluster.databaseUrl = dbUrl.toString();

    const slack = new SlackFake({ signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN, users });
    await slack.start();
    cluster.slack = slack;
    const publicPort = await freePort();
    const publicUrl = `http://127.0.0.1:${publicPort}`;
    const auth = new AuthServer({
      clients: [{ client_id: 'deputy', client_secret: CLIENT_SECRET, redirect_uris: [`${publicUrl}/oauth/callback`] }],
      accessTokenTtl,
      accounts,
    });
    await auth.start();
    cluster.auth = auth;
    const apps = await new FakeApps({ introspectionUrl: `${auth.issuer}/token/introspection`, clientId: 'deputy', clientSecret: CLIENT_SECRET }).start();
    cluster.apps = apps;

    let appsYaml = '';
    const appEnv = {};
    for (const [id, name, base] of [['salesforce', 'Salesforce', apps.salesforceBase], ['servicenow', 'ServiceNow', apps.servicenowBase], ['box', 'Box', apps.boxBase]]) {
      appsYaml += `  ${id}:
    type: oauth2
    display_name: ${name}
    issuer: ${auth.issuer}
    client_id: deputy
    scopes: [openid, email, offline_access]
    api_base_url: ${base}
${(appSettings[id] ?? '').split('\n').filter(Boolean).map((line) => `    ${line}\n`).join('')}`;
      appEnv[`DEPUTY_APP_${id.toUpperCase()}_CLIENT_SECRET`] = CLIENT_SECRET;
    }
    const recipesDir = join(dir, 'recipes');
    mkdirSync(recipesDir);
    for (const f of readdirSync(EXAMPLE_RECIPES)) copyFileSync(join(EXAMPLE_RECIPES, f), join(recipesDir, f));
    for (const [name, text] of Object.entries(recipes)) writeFileSync(join(recipesDir, name), text);

    // One keyring: the first process creates it (mode 0600) on its first start, the others read it.
    cluster.keysFile = join(dir, 'deputy.keys');
    const configYaml = `${extraConfig}
apps:
${appsYaml}`;
    const sharedEnv = {
      DEPUTY_SLACK_SIGNING_SECRET: SIGNING_SECRET,
      DEPUTY_SLACK_BOT_TOKEN: BOT_TOKEN,
      DEPUTY_SLACK_API_URL: slack.apiUrl,
      DEPUTY_PUBLIC_URL: publicUrl,
      DEPUTY_DATABASE: cluster.databaseUrl,
      DEPUTY_KEYS: cluster.keysFile,
      DEPUTY_RECIPES: recipesDir,
      DEPUTY_LOG_LEVEL: logLevel,
      ...appEnv,
      ...env,
    };
    for (let i = 0; i < size; i += 1) {
      const own = join(dir, `deputy-${i}`);
      mkdirSync(own);
      const deputy = new Deputy({ configYaml, env: sharedEnv, dir: own });
      deputy.port = await freePort();
      cluster.deputies.push(deputy);
    }
    // The first alone: it runs the migrations and writes the keyring; then the others together.
    await cluster.start(0);
    await Promise.all(cluster.deputies.slice(1).map((_, i) => cluster.start(i + 1)));

    cluster.nginx = new Nginx({ port: publicPort, upstreams: cluster.deputies.map((d) => `127.0.0.1:${d.port}`), dir: join(dir, 'nginx') });
    await cluster.nginx.start();
    cluster.url = publicUrl;
    slack.deputyUrl = publicUrl;
    return cluster;
  } catch (error) {
    await cluster.stop().catch(() => {});
    throw error;
  }
}

export class Cluster {
  constructor({ dir }) {
    this.dir = dir;
    this.deputies = [];
    this.runs = [];  // every start of every process: { index, pid, label, startedAt, endedAt, how }
  }

  get size() {
    return this.deputies.length;
  }

  /** The pid of process i's current (or last) run. */
  pid(i) {
    return this.deputies[i].child?.pid;
  }

  /** How process i's current run names itself in metrics: `process="<host>:<pid>"`. */
  label(i) {
    return `${hostname()}:${this.pid(i)}`;
  }

  /** Indexes of the processes running now (started, not exited; paused ones included). */
  running() {
    return this.deputies.map((d, i) => (d.child && !d.exited ? i : -1)).filter((i) => i >= 0);
  }

  /** Starts process i (again): same folder, port, database and keyring; a new run. */
  async start(i) {
    const deputy = this.deputies[i];
    await deputy.start();
    this.runs.push({ index: i, pid: deputy.child.pid, label: this.label(i), startedAt: Date.now() });
    return deputy;
  }

  #run(i) {
    return this.runs.findLast((r) => r.index === i);
  }

  /** SIGKILL process i; resolves when it is gone, with the time of the kill. */
  async kill9(i) {
    const deputy = this.deputies[i];
    const at = Date.now();
    deputy.child.kill('SIGKILL');
    await deputy.exitPromise;
    Object.assign(this.#run(i), { endedAt: at, how: 'SIGKILL' });
    return { at };
  }

  /**
   * SIGTERM process i (when given) and wait for it to exit; resolves with { code, signal, at,
   * exitedAt }. Without i: stops and removes everything (see shutdown()).
   */
  async stop(i) {
    if (i === undefined) return this.shutdown();
    const deputy = this.deputies[i];
    const at = Date.now();
    deputy.child.kill('SIGCONT');
    deputy.child.kill('SIGTERM');
    const result = await waitExit(deputy, 60000);
    Object.assign(this.#run(i), { endedAt: at, how: 'SIGTERM' });
    return { ...result, at, exitedAt: Date.now() };
  }

  /** SIGSTOP process i: it holds its sockets and claims but does nothing (a long GC pause, a frozen VM). */
  pause(i) {
    this.deputies[i].child.kill('SIGSTOP');
    return { at: Date.now() };
  }

  /** SIGCONT process i. */
  resume(i) {
    this.deputies[i].child.kill('SIGCONT');
    return { at: Date.now() };
  }

  /** Rows of a query on the shared database, as objects (through json_agg). */
  async query(sql) {
    const out = await psqlAt(this.databaseUrl, `SELECT coalesce(json_agg(t), '[]'::json) FROM (${sql}) t`);
    return JSON.parse(out || '[]');
  }

  /** One statement on the shared database; its psql output. */
  async psql(sql) {
    return psqlAt(this.databaseUrl, sql);
  }

  /** The processes table (every run of every process), oldest first, timestamps as numbers. */
  async processes() {
    const rows = await this.query('SELECT epoch, host, pid, started_at, heartbeat_at, ended_at FROM processes ORDER BY epoch');
    return rows.map((r) => ({ ...r, epoch: Number(r.epoch), pid: Number(r.pid), started_at: Number(r.started_at), heartbeat_at: Number(r.heartbeat_at), ended_at: r.ended_at === null ? null : Number(r.ended_at) }));
  }

  /** The processes row of process i's current (or last) run (by its pid), or undefined. */
  async processRow(i, pid = this.pid(i)) {
    return (await this.processes()).findLast((r) => r.pid === pid);
  }

  /** The database's clock, in milliseconds (what heartbeat_at and ended_at are measured by). */
  async dbNow() {
    return Number(await this.psql('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint'));
  }

  /** GET a path of process i directly (not through nginx): { status, text }. */
  async get(i, path) {
    const r = await fetch(`${this.deputies[i].url}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: r.status, text: await r.text() };
  }

  /** Process i's metric `name` (summed over samples matching `labels`). */
  async metric(i, name, labels = {}) {
    return this.deputies[i].metric(name, labels);
  }

  /** Writes every process's log and nginx's logs under tests/artifacts/cluster-<name>/. */
  saveLogs(name) {
    const out = join(ARTIFACTS, `cluster-${name.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 80)}`);
    try {
      mkdirSync(out, { recursive: true });
      this.deputies.forEach((d, i) => writeFileSync(join(out, `deputy-${i}.log`), d.logs));
      if (this.nginx) {
        writeFileSync(join(out, 'nginx-error.log'), this.nginx.errorLog());
        writeFileSync(join(out, 'nginx-access.log'), this.nginx.accessLog());
      }
      writeFileSync(join(out, 'runs.json'), JSON.stringify(this.runs, null, 2));
    } catch {
      // best effort
    }
    return out;
  }

  /** Stops every process (paused ones too), nginx and the fakes, and drops the database. */
  async shutdown() {
    await Promise.all(this.deputies.map(async (d) => {
      if (!d.child || d.exited) return;
      d.child.kill('SIGCONT');
      d.child.kill('SIGTERM');
      await waitExit(d, 20000);
    }));
    await this.nginx?.stop();
    await this.apps?.stop().catch(() => {});
    await this.auth?.stop().catch(() => {});
    await this.slack?.stop().catch(() => {});
    if (this.dbName) await psqlAt(E2E_POSTGRES_URL, `DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Calls fn(i) for i in 0..count-1 at `perSecond` (not waiting for one to end before starting
 * the next), and resolves with all their results.
 */
export async function paced(count, perSecond, fn) {
  const started = Date.now();
  const all = [];
  for (let i = 0; i < count; i += 1) {
    const wait = started + (i * 1000) / perSecond - Date.now();
    if (wait > 0) await sleep(wait);
    all.push(fn(i));
  }
  return Promise.all(all);
}

/**
 * Everything Deputy posted to each slash command's response_url, by response id, kept as it
 * arrives (the Slack fake's calls, indexed).
 */
export class Answers {
  constructor(slack) {
    this.byId = new Map();
    const add = (c) => {
      if (c.method !== 'response_url') return;
      const list = this.byId.get(c.id) ?? [];
      list.push({ text: String(c.body?.text ?? ''), at: c.at, seq: c.seq });
      this.byId.set(c.id, list);
    };
    for (const c of slack.calls) add(c);
    this.unsubscribe = slack.subscribe(add);
  }

  /** The answers to one command matching `pattern` (all of them without). */
  of(responseId, pattern) {
    const list = this.byId.get(responseId) ?? [];
    return pattern ? list.filter((a) => pattern.test(a.text)) : list;
  }
}
