// Starts bench/fake_app (deputy_fake_app): a native stand-in for Salesforce's
// sobjects/Opportunity and ServiceNow's table/incident that answers after a set delay,
// for benchmarks where the Node fake in fake-apps.mjs would be the limit. It checks
// bearer tokens by introspection at the authorization server, as fake-apps.mjs does.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, resolve } from 'node:path';
import { DEPUTY_BIN } from './deputy.mjs';
import { SALESFORCE_BASE } from './fake-apps.mjs';

export const FAKE_APP_BIN = resolve(process.env.DEPUTY_FAKE_APP_BIN ?? resolve(dirname(DEPUTY_BIN), '../bench/fake_app/deputy_fake_app'));

export class NativeApps {
  /**
   * @param {object} options
   * @param {number} [options.delayMs] every call answers this late
   * @param {Record<string, number>} [options.delayByPath] {prefix: ms} for one app only
   */
  constructor({ introspectionUrl, clientId, clientSecret, delayMs = 0, delayByPath = {}, threads = 1 }) {
    this.args = ['--introspection-url', introspectionUrl, '--client-id', clientId, '--client-secret', clientSecret,
      '--delay-ms', String(delayMs), '--threads', String(threads)];
    for (const [prefix, ms] of Object.entries(delayByPath)) this.args.push('--delay', `${prefix}=${ms}`);
  }

  async start() {
    this.child = spawn(FAKE_APP_BIN, this.args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((_, reject) => this.child.once('exit', (code) => reject(new Error(`${FAKE_APP_BIN} exited with ${code}`))));
    const lines = createInterface({ input: this.child.stdout });
    const first = new Promise((r) => lines.once('line', r));
    const { port } = JSON.parse(await Promise.race([first, exited]));
    this.exited = exited.catch(() => {});
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  async stop() {
    this.child.kill('SIGTERM');
    await this.exited;
  }

  get salesforceBase() { return `${this.url}${SALESFORCE_BASE}`; }
  get servicenowBase() { return this.url; }
  get boxBase() { return `${this.url}/2.0`; }

  /** {created: {Opportunity, incident}, in_flight: {prefix: n}, rejected} */
  async stats() {
    return (await fetch(`${this.url}/_stats`)).json();
  }
}
