// Starts the real deputy binary as a child process for end-to-end tests.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';

export const DEPUTY_BIN = resolve(process.env.DEPUTY_BIN ?? 'build/src/deputy');

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

  async start() {
    this.port ??= await freePort();
    const args = ['serve'];
    if (this.config) args.push('--config', this.config);
    this.exited = false;
    this.child = spawn(DEPUTY_BIN, args, {
      cwd: this.dir,
      env: {
        PATH: process.env.PATH,
        DEPUTY_LISTEN: `127.0.0.1:${this.port}`,
        DEPUTY_LOG_LEVEL: 'debug',
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

  /** SIGTERM and wait; resolves with {code, signal}. */
  async stop(signal = 'SIGTERM') {
    if (!this.child || this.exited) return this.exitPromise;
    this.child.kill(signal);
    return this.exitPromise;
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
