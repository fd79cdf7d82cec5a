// The whole cast for end-to-end tests: the Slack fake, a real OIDC authorization server,
// and Deputy configured with an OAuth2 app against it.
import { readFileSync, readdirSync, mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { SlackFake } from './slack-fake.mjs';
import { AuthServer } from './auth-server.mjs';
import { FakeApps } from './fake-apps.mjs';
import { Deputy, freePort } from './deputy.mjs';

export const EXAMPLE_RECIPES = resolve('recipes/examples');

export const SIGNING_SECRET = 'e2e-stack-signing-secret';
export const BOT_TOKEN = 'xoxb-e2e-stack-fake';
export const CLIENT_SECRET = 'demo-client-secret-7f3a9c';

/**
 * @param {object} [options]
 * @param {string} [options.extraApps] more YAML under `apps:` (indented by two spaces); ${issuer} is replaced
 * @param {string} [options.extraConfig] more top-level YAML
 * @param {Record<string,string>} [options.env]
 * @param {Record<string,string>} [options.appSettings] more settings for one of the fake apps, by id (e.g. `{ salesforce: 'timeout_seconds: 2' }`)
 * @param {Function} [options.appServer] starts the apps' stand-in from { introspectionUrl, clientId, clientSecret } (default: FakeApps)
 */
export async function startStack({ extraApps = '', extraConfig = '', env = {}, accessTokenTtl = 3600, withApps = false, recipes = {}, introspectionCacheMs = 0, appSettings = {}, appServer } = {}) {
  const slack = new SlackFake({ signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN });
  await slack.start();
  const port = await freePort();
  const auth = new AuthServer({
    clients: [{ client_id: 'deputy', client_secret: CLIENT_SECRET, redirect_uris: [`http://127.0.0.1:${port}/oauth/callback`] }],
    accessTokenTtl,
  });
  await auth.start();
  let apps;
  const appEnv = {};
  if (withApps) {
    // Salesforce, ServiceNow and Box stand-ins, logging in at the local authorization server.
    const introspection = { introspectionUrl: `${auth.issuer}/token/introspection`, clientId: 'deputy', clientSecret: CLIENT_SECRET };
    apps = await (appServer ? appServer(introspection) : new FakeApps({ ...introspection, introspectionCacheMs }).start());
    for (const [id, name, base] of [['salesforce', 'Salesforce', apps.salesforceBase], ['servicenow', 'ServiceNow', apps.servicenowBase], ['box', 'Box', apps.boxBase]]) {
      extraApps += `  ${id}:
    type: oauth2
    display_name: ${name}
    issuer: \${issuer}
    client_id: deputy
    scopes: [openid, email, offline_access]
    api_base_url: ${base}
${(appSettings[id] ?? '').split('\n').filter(Boolean).map((line) => `    ${line}\n`).join('')}`;
      appEnv[`DEPUTY_APP_${id.toUpperCase()}_CLIENT_SECRET`] = CLIENT_SECRET;
    }
    // The shipped examples plus any recipes the test adds, in a folder of their own.
    const dir = mkdtempSync(join(tmpdir(), 'deputy-recipes-'));
    for (const f of readdirSync(EXAMPLE_RECIPES)) copyFileSync(join(EXAMPLE_RECIPES, f), join(dir, f));
    for (const [name, text] of Object.entries(recipes)) writeFileSync(join(dir, name), text);
    appEnv.DEPUTY_RECIPES = dir;
  }
  const deputy = new Deputy({
    configYaml: `${extraConfig}
apps:
  demo:
    type: oauth2
    display_name: Demo CRM
    issuer: ${auth.issuer}
    client_id: deputy
    scopes: [openid, email, offline_access]
    api_base_url: ${auth.issuer}
${extraApps.replaceAll('${issuer}', auth.issuer)}`,
    env: {
      DEPUTY_SLACK_SIGNING_SECRET: SIGNING_SECRET,
      DEPUTY_SLACK_BOT_TOKEN: BOT_TOKEN,
      DEPUTY_SLACK_API_URL: slack.apiUrl,
      DEPUTY_PUBLIC_URL: `http://127.0.0.1:${port}`,
      DEPUTY_APP_DEMO_CLIENT_SECRET: CLIENT_SECRET,
      ...appEnv,
      ...env,
    },
  });
  deputy.port = port;
  await deputy.start();
  slack.deputyUrl = deputy.url;
  return {
    slack,
    auth,
    apps,
    deputy,
    async stop() {
      await deputy.stop();
      await apps?.stop();
      await auth.stop();
      await slack.stop();
      deputy.cleanup();
    },
  };
}

/**
 * Looks for every secret the authorization server issued (access and refresh tokens, codes,
 * PKCE verifiers), the client secret, the bot token and the signing secret, raw, base64,
 * base64url, hex and URL-encoded, in Deputy's database files (with the WAL), or all of its
 * PostgreSQL database as pg_dump writes it, and its logs.
 */
export function findLeakedSecrets(stack, extraSecrets = []) {
  const onPostgres = Boolean(stack.deputy.postgres);
  const files = onPostgres ? ['pg_dump'] : readdirSync(stack.deputy.dir).filter((f) => f.startsWith('deputy.db'));
  const haystacks = onPostgres ? [stack.deputy.dumpDatabase()] : files.map((f) => readFileSync(join(stack.deputy.dir, f)).toString('latin1'));
  haystacks.push(stack.deputy.logs);
  const { issued } = stack.auth;
  const secrets = [...issued.accessTokens, ...issued.refreshTokens, ...issued.codes, ...issued.verifiers, CLIENT_SECRET, BOT_TOKEN, SIGNING_SECRET, ...extraSecrets]
    .filter((s) => s && s.length >= 8);
  const leaks = [];
  for (const secret of secrets) {
    const forms = [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url'), Buffer.from(secret).toString('hex'), encodeURIComponent(secret)];
    if (forms.some((form) => haystacks.some((hay) => hay.includes(form)))) leaks.push(`${secret.slice(0, 4)}…`);
  }
  return { leaks, files, counts: { accessTokens: issued.accessTokens.length, refreshTokens: issued.refreshTokens.length, codes: issued.codes.length, verifiers: issued.verifiers.length } };
}

export function findButton(blocks, predicate) {
  for (const b of blocks ?? []) {
    if (b.accessory && predicate(b.accessory)) return b.accessory;
    for (const e of b.elements ?? []) if (predicate(e)) return e;
  }
  return undefined;
}

/** Asks Deputy for a connect link in a DM and returns its URL. */
export async function connectLink(slack, user, app = 'demo') {
  const sent = await slack.sendDirectMessage({ user, text: `connect ${app}` });
  // The "Connected to …" note of a connection made just before may arrive after this is sent:
  // the answer is the message with the link.
  const withLink = (c) => findButton(c.body.blocks, (e) => e.url) !== undefined;
  const reply = await slack.answerTo(sent, { match: withLink }).catch((e) => {
    throw new Error(`no Connect button with a link for "connect ${app}": ${e.message}`);
  });
  const button = findButton(reply.body.blocks, (e) => e.url);
  return { url: button.url, reply };
}
