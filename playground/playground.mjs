// The local playground: everything Deputy needs, on this machine, and a page that stands in
// for Slack. The page talks to Deputy only as Slack does: it signs and POSTs slash commands,
// events and button clicks to /slack/events, and receives Deputy's Web API calls
// (chat.postMessage, chat.postEphemeral, chat.update, response_url) through the Slack fake.
import http from 'node:http';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { SlackFake } from '../tests/support/slack-fake.mjs';
import { AuthServer } from '../tests/support/auth-server.mjs';
import { FakeApps } from '../tests/support/fake-apps.mjs';
import { Deputy } from '../tests/support/deputy.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const SIGNING_SECRET = 'playground-signing-secret';
const BOT_TOKEN = 'xoxb-fake-playground';
const CLIENT_SECRET = 'playground-client-secret';

export const PEOPLE = [
  { id: 'U0ALICE', name: 'alice', realName: 'Alice Example', account: 'alice', role: 'sales rep' },
  { id: 'U0BOB', name: 'bob', realName: 'Bob Example', account: 'bob', role: 'sales rep, approver' },
  { id: 'U0CAROL', name: 'carol', realName: 'Carol Example', account: 'carol', role: 'agent' },
  { id: 'U0ADMIN', name: 'admin', realName: 'Ada Admin', account: 'admin', role: 'Deputy admin' },
];
const CHANNEL = 'C0GENERAL';

/** Messages as each person would see them in Slack, built from what Deputy sends. */
class Transcript {
  constructor(slack) {
    this.slack = slack;
    this.messages = [];
    this.responses = new Map();  // response_url id -> { user, channel, messageId }
    slack.subscribe((call) => this.#onCall(call));
  }

  add(message) {
    const m = { id: randomBytes(6).toString('hex'), at: Date.now(), ephemeralTo: null, blocks: [], ...message };
    this.messages.push(m);
    return m;
  }

  channelOf(channel) {
    return channel?.startsWith('U') ? this.slack.dmChannelOf(channel) : channel;
  }

  visibleTo(user) {
    const dm = this.slack.dmChannelOf(user);
    return this.messages.filter((m) => (m.channel === CHANNEL || m.channel === dm) && (!m.ephemeralTo || m.ephemeralTo === user));
  }

  #onCall(call) {
    if (call.failed) return;
    const body = call.body ?? {};
    const blocks = typeof body.blocks === 'string' ? JSON.parse(body.blocks) : body.blocks ?? [];
    if (call.method === 'chat.postMessage') {
      this.add({ channel: this.channelOf(body.channel), ts: call.response?.ts, author: 'deputy', text: body.text ?? '', blocks, threadTs: body.thread_ts });
    } else if (call.method === 'chat.postEphemeral') {
      this.add({ channel: this.channelOf(body.channel), author: 'deputy', text: body.text ?? '', blocks, ephemeralTo: body.user });
    } else if (call.method === 'chat.update') {
      const target = this.messages.find((m) => m.ts === body.ts && m.channel === this.channelOf(body.channel));
      if (target) Object.assign(target, { text: body.text ?? '', blocks, edited: true });
    } else if (call.method === 'response_url') {
      const context = this.responses.get(call.id);
      if (!context) return;
      const target = context.messageId && this.messages.find((m) => m.id === context.messageId);
      if (body.replace_original && target) {
        Object.assign(target, { text: body.text ?? '', blocks, edited: true });
      } else {
        const publicAnswer = body.response_type === 'in_channel';
        this.add({ channel: context.channel, author: 'deputy', text: body.text ?? '', blocks, ephemeralTo: publicAnswer ? null : context.user });
      }
    }
  }
}

async function readJson(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return raw ? JSON.parse(raw) : {};
}

/**
 * Starts the authorization server, the demo apps, the Slack stand-in, Deputy and the page.
 * Ports: 0 picks free ones (tests); the demo uses fixed ones so the printed links stay valid.
 */
export async function startPlayground({
  port = 3001, deputyPort = 3000, authPort = 3002, appsPort = 3003, dataDir = resolve('demo-data'),
  recipesDir = resolve(here, '../recipes/examples'), log = () => {}, fresh = false,
} = {}) {
  // The demo's logins and records live in memory; a database left from an earlier run would
  // point at grants that no longer exist.
  if (fresh) rmSync(dataDir, { recursive: true, force: true });
  const slack = new SlackFake({ signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN, users: Object.fromEntries(PEOPLE.map((p) => [p.id, { name: p.name, realName: p.realName, email: `${p.account}@example.com` }])) });
  await slack.start();
  const auth = new AuthServer({
    port: authPort,
    alwaysPromptLogin: true,
    clients: [{ client_id: 'deputy', client_secret: CLIENT_SECRET, redirect_uris: [`http://127.0.0.1:${deputyPort}/oauth/callback`] }],
  });
  await auth.start();
  const apps = await new FakeApps({ introspectionUrl: `${auth.issuer}/token/introspection`, clientId: 'deputy', clientSecret: CLIENT_SECRET, port: appsPort }).start();
  apps.addApproval({ number: 'RITM0010001', approver: 'bob', requestedBy: 'alice', short_description: 'New laptop for Alice' });

  let appsYaml = '';
  const env = {
    DEPUTY_LISTEN: `127.0.0.1:${deputyPort}`,
    DEPUTY_PUBLIC_URL: `http://127.0.0.1:${deputyPort}`,
    DEPUTY_SLACK_SIGNING_SECRET: SIGNING_SECRET,
    DEPUTY_SLACK_BOT_TOKEN: BOT_TOKEN,
    DEPUTY_SLACK_API_URL: slack.apiUrl,
    DEPUTY_RECIPES: recipesDir,
    DEPUTY_ADMINS: 'U0ADMIN',
    DEPUTY_LOG_LEVEL: 'info',
  };
  for (const [id, name, base] of [['salesforce', 'Salesforce', apps.salesforceBase], ['servicenow', 'ServiceNow', apps.servicenowBase], ['box', 'Box', apps.boxBase]]) {
    appsYaml += `  ${id}:\n    type: oauth2\n    display_name: ${name}\n    issuer: ${auth.issuer}\n    client_id: deputy\n    scopes: [openid, email, offline_access]\n    api_base_url: ${base}\n`;
    env[`DEPUTY_APP_${id.toUpperCase()}_CLIENT_SECRET`] = CLIENT_SECRET;
  }
  mkdirSync(dataDir, { recursive: true });
  const deputy = new Deputy({ dir: dataDir, configYaml: `apps:\n${appsYaml}`, env, onOutput: (d) => log(String(d)) });
  deputy.port = deputyPort;
  await deputy.start();
  slack.deputyUrl = deputy.url;

  const transcript = new Transcript(slack);
  const page = readFileSync(join(here, 'page.html'), 'utf8');
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const json = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method === 'GET' && url.pathname === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(page);
      }
      if (req.method === 'GET' && url.pathname === '/api/setup') {
        return json(200, { people: PEOPLE, channel: CHANNEL, dms: Object.fromEntries(PEOPLE.map((p) => [p.id, slack.dmChannelOf(p.id)])), recordsUrl: apps.url, authUrl: auth.issuer, deputyUrl: deputy.url });
      }
      if (req.method === 'GET' && url.pathname === '/api/messages') {
        return json(200, transcript.visibleTo(url.searchParams.get('user')));
      }
      if (req.method === 'POST' && url.pathname === '/api/send') {
        const { user, where, text } = await readJson(req);
        const typed = String(text ?? '').trim();
        if (!PEOPLE.some((p) => p.id === user) || !typed) return json(400, { error: 'who and what' });
        const channel = where === 'dm' ? slack.dmChannelOf(user) : CHANNEL;
        if (typed.startsWith('/deputy')) {
          // Slack shows a slash command only to the person who typed it. Messages are kept as
          // Slack holds them (escaped, with <…> forms) and the page renders them as mrkdwn.
          transcript.add({ channel, author: user, text: slack.slackText(typed), ephemeralTo: user });
          // Known before sending: Deputy may answer through response_url before its ack is read here.
          const responseId = `R${randomBytes(8).toString('hex')}`;
          transcript.responses.set(responseId, { user, channel, messageId: null });
          const sent = await slack.sendSlashCommand({ user, channel, channelName: where === 'dm' ? 'directmessage' : 'general', typed: typed.slice('/deputy'.length).trim(), responseId });
          return json(sent.status === 200 ? 200 : 502, { status: sent.status });
        }
        const mention = /^@deputy\b/i.test(typed);
        if (where !== 'dm' && !mention) {
          transcript.add({ channel, author: user, text: slack.slackText(typed) });
          return json(200, { status: 'posted' });
        }
        const words = mention ? typed.replace(/^@deputy\s*/i, '') : typed;
        // Shown before it is sent: Deputy may answer before the ack is read here.
        const message = transcript.add({ channel, author: user, text: slack.slackText(typed) });
        const sent = where === 'dm' ? await slack.sendDirectMessage({ user, typed: words }) : await slack.sendAppMention({ user, channel, typed: words });
        message.ts = sent.ts;
        return json(sent.status === 200 ? 200 : 502, { status: sent.status });
      }
      if (req.method === 'POST' && url.pathname === '/api/click') {
        const { user, messageId, actionId, value, blockId } = await readJson(req);
        const message = transcript.messages.find((m) => m.id === messageId);
        if (!message) return json(404, { error: 'no such message' });
        const responseId = `P${randomBytes(8).toString('hex')}`;
        transcript.responses.set(responseId, { user, channel: message.channel, messageId });
        const sent = await slack.sendBlockAction({
          user, actionId, value, blockId, messageTs: message.ts, channel: message.channel, isEphemeral: Boolean(message.ephemeralTo),
          responseUrl: `${slack.baseUrl}/response/${responseId}`,
        });
        return json(sent.status === 200 ? 200 : 502, { status: sent.status });
      }
      json(404, { error: 'not found' });
    } catch (e) {
      json(500, { error: String(e) });
    }
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const playgroundUrl = `http://localhost:${server.address().port}`;
  return {
    url: playgroundUrl, slack, auth, apps, deputy, transcript,
    async stop() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
      await deputy.stop();
      await apps.stop();
      await auth.stop();
      await slack.stop();
    },
  };
}
