// Starts the real deputy binary as a child process for end-to-end tests.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import net from 'node:net';

export const DEPUTY_BIN = resolve(process.env.DEPUTY_BIN ?? 'build/src/deputy');

// A sanitizer build's settings reach every Deputy the tests start, the CLI included. With
// log_path set (scripts/test sets it), a report is a file named <log_path>.<pid>.
const SANITIZER_VARIABLES = ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'TSAN_OPTIONS'];
export function sanitizerEnv() {
  return Object.fromEntries(SANITIZER_VARIABLES.filter((v) => process.env[v] !== undefined).map((v) => [v, process.env[v]]));
}

/** The sanitizer reports a process left, as text ('' when none, or no sanitizer build). */
export function sanitizerReports(pid) {
  let text = '';
  for (const variable of SANITIZER_VARIABLES) {
    const logPath = /(?:^|:)log_path=([^:]+)/.exec(process.env[variable] ?? '')?.[1];
    if (!logPath) continue;
    const file = `${logPath}.${pid}`;
    if (existsSync(file)) text += readFileSync(file, 'utf8');
  }
  return text;
}

// DEPUTY_E2E_POSTGRES_URL (a server scripts/with-postgres started): each Deputy working
// folder gets a PostgreSQL database of its own there instead of its SQLite file; a Deputy
// restarted on the same folder finds the same database.
const E2E_POSTGRES_URL = process.env.DEPUTY_E2E_POSTGRES_URL;

function psql(sql) {
  return execFileSync('psql', [E2E_POSTGRES_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8' }).trim();
}

function postgresDatabaseFor(dir) {
  const name = `e2e_${basename(dir).replace(/[^A-Za-z0-9]/g, '_').toLowerCase()}`;
  if (!psql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`)) psql(`CREATE DATABASE ${name}`);
  const url = new URL(E2E_POSTGRES_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

export async function freePort() {
  return new Promise((res, rej) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => res(port));
    });
    server.on('error', rej);
  });
}

export class Deputy {
  /**
   * @param {object} options
   * @param {Record<string,string>} [options.env] DEPUTY_* variables on top of the defaults below
   * @param {string} [options.dir] working directory (kept across restarts when given)
   * @param {string} [options.config] path of a YAML config file
   * @param {string} [options.configYaml] config text, written to deputy.yaml in the working directory
   */
  constructor({ env = {}, dir, config, configYaml, onOutput } = {}) {
    this.onOutput = onOutput;
    this.ownDir = !dir;
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'deputy-e2e-'));
    this.extraEnv = env;
    this.config = config;
    if (configYaml !== undefined) {
      this.config = join(this.dir, 'deputy.yaml');
      writeFileSync(this.config, configYaml);
    }
    this.logs = '';
    this.port = undefined;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The storage this Deputy uses: its own PostgreSQL database, or SQLite in its folder. */
  get database() {
    if (this.extraEnv.DEPUTY_DATABASE) return this.extraEnv.DEPUTY_DATABASE;
    if (!E2E_POSTGRES_URL) return undefined;
    this.postgres ??= postgresDatabaseFor(this.dir);
    return this.postgres.url;
  }

  /** DEPUTY_DATABASE when this Deputy is on PostgreSQL; nothing on its default SQLite file. */
  databaseEnv() {
    return this.database ? { DEPUTY_DATABASE: this.database } : {};
  }

  /** The environment for running the CLI beside this server (same database). */
  cliEnv(more = {}) {
    return { PATH: process.env.PATH, ...sanitizerEnv(), ...this.databaseEnv(), ...this.extraEnv, ...more };
  }

  /** PostgreSQL only: everything the database holds, as pg_dump writes it (bytea as hex). */
  dumpDatabase() {
    return execFileSync('pg_dump', ['--no-owner', this.database], { encoding: 'latin1', maxBuffer: 256 << 20 });
  }

  async start() {
    this.port ??= await freePort();
    const args = ['serve'];
    if (this.config) args.push('--config', this.config);
    this.exited = false;
    this.child = spawn(DEPUTY_BIN, args, {
      cwd: this.dir,
      env: {
        PATH: process.env.PATH,
        ...sanitizerEnv(),
        DEPUTY_LISTEN: `127.0.0.1:${this.port}`,
        DEPUTY_LOG_LEVEL: 'debug',
        ...this.databaseEnv(),
        ...this.extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout.on('data', (d) => { this.logs += d; this.onOutput?.(d); });
    this.child.stderr.on('data', (d) => { this.logs += d; this.onOutput?.(d); });
    this.exitPromise = new Promise((res) =>
      this.child.on('exit', (code, signal) => {
        this.exited = true;
        res({ code, signal });
      }),
    );
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`deputy exited during start:\n${this.logs}`);
      try {
        const r = await fetch(`${this.url}/readyz`);
        if (r.status === 200) return this;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`deputy did not become ready:\n${this.logs}`);
  }

  /** SIGTERM and wait; resolves with {code, signal}. Throws when a sanitizer reported. */
  async stop(signal = 'SIGTERM') {
    if (!this.child) return undefined;
    if (!this.exited) this.child.kill(signal);
    const exit = await this.exitPromise;
    const reports = sanitizerReports(this.child.pid);
    if (reports) throw new Error(`deputy (pid ${this.child.pid}) had sanitizer reports:\n${reports}`);
    return exit;
  }

  async kill9() {
    return this.stop('SIGKILL');
  }

  async metric(name, labels = {}) {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const rest = line.slice(name.length);
      if (rest[0] !== '{' && rest[0] !== ' ') continue;
      if (want.every((w) => rest.includes(w))) total += Number(line.split(' ').pop());
    }
    return total;
  }

  cleanup() {
    if (this.postgres && this.ownDir) psql(`DROP DATABASE IF EXISTS ${this.postgres.name} WITH (FORCE)`);
    if (this.ownDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls until fn() is truthy (or throws on timeout with the message). */
export async function eventually(fn, { timeoutMs = 5000, intervalMs = 25, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${message}`);
}
