// A local stand-in for Slack in end-to-end tests, dependency-free.
//
// It plays both of Slack's roles:
//  - the sender: it signs and POSTs Events API envelopes, slash commands and interactivity
//    payloads to Deputy's /slack/events exactly as Slack does (v0 HMAC-SHA256 over
//    "v0:{timestamp}:{raw body}", Slack's headers, content types and retry headers);
//  - the Web API: chat.postMessage, chat.postEphemeral, chat.update, users.info,
//    conversations.open, auth.test, and response_url targets, recording every call, with
//    switches for 429 (Retry-After), 5xx and ok:false answers.
import http from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';

const DEFAULT_USERS = {
  U0ALICE: { name: 'alice', realName: 'Alice Example', email: 'alice@example.com' },
  U0BOB: { name: 'bob', realName: 'Bob Example', email: 'bob@example.com' },
  U0CAROL: { name: 'carol', realName: 'Carol Example', email: 'carol@example.com' },
  U0ADMIN: { name: 'admin', realName: 'Ada Admin', email: 'admin@example.com' },
  // A profile without an email, as Slack returns it without the users:read.email scope.
  U0NOEMAIL: { name: 'noemail', realName: 'No Email' },
};

let tsCounter = 0;
/** Slack message timestamps: seconds "." six digits, unique per message. */
function nextTs() {
  tsCounter += 1;
  return `${Math.floor(Date.now() / 1000)}.${String(tsCounter).padStart(6, '0')}`;
}

function randomId(prefix, length = 10) {
  return prefix + randomBytes(length).toString('hex').toUpperCase().slice(0, length);
}

const DEFAULT_CHANNELS = { general: 'C0GENERAL', random: 'C0RANDOM' };

/**
 * What a person typed, as Slack sends it to an app: `&`, `<` and `>` escaped first, then
 * people (@name), channels (#name), web addresses and email addresses turned into Slack's
 * <…> forms. Slash commands of an app with should_escape get labelled mentions
 * (<@U…|name>); events carry bare ones (<@U…>).
 * https://api.slack.com/reference/surfaces/formatting#escaping
 */
export function toSlackText(typed, { users = DEFAULT_USERS, channels = DEFAULT_CHANNELS, labels = false } = {}) {
  const escaped = String(typed).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  const byName = new Map(Object.entries(users).map(([id, u]) => [u.name, id]));
  // One pass, so a form made by one rule is never read again by another.
  return escaped.replace(
    /(https?:\/\/[^\s]+)|([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})|(^|(?<=\s))@([a-z0-9._-]+)|(^|(?<=\s))#([a-z0-9_-]+)/g,
    (whole, url, email, _a, name, _b, channel) => {
      if (url) return `<${url}>`;
      if (email) return `<mailto:${email}|${email}>`;
      if (name !== undefined) {
        if (['here', 'channel', 'everyone'].includes(name)) return `<!${name}>`;
        const id = byName.get(name.toLowerCase());
        return id ? (labels ? `<@${id}|${name}>` : `<@${id}>`) : whole;
      }
      const id = channels[channel];
      return id ? `<#${id}|${channel}>` : whole;
    },
  );
}

/** Slack percent-encodes form bodies without '+' for spaces (see its signing example). */
function formEncode(fields) {
  return Object.entries(fields)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v ?? '')}`)
    .join('&');
}

export class SlackFake {
  constructor({
    signingSecret,
    botToken = 'xoxb-fake-bot-token',
    deputyUrl,
    teamId = 'T0DEPUTY',
    teamDomain = 'deputy-test',
    botUserId = 'U0DEPUTYBOT',
    apiAppId = 'A0DEPUTY',
    users = {},
  } = {}) {
    this.signingSecret = signingSecret;
    this.botToken = botToken;
    this.deputyUrl = deputyUrl;
    this.teamId = teamId;
    this.teamDomain = teamDomain;
    this.botUserId = botUserId;
    this.apiAppId = apiAppId;
    this.users = { ...DEFAULT_USERS, ...users };
    this.calls = [];
    this.faults = new Map();
    this.waiters = [];
    this.seq = 0;  // numbers every call, across clear()
  }

  /** What a person typed, as this workspace's Slack sends it (see toSlackText). */
  slackText(typed, { labels = false } = {}) {
    return toSlackText(typed, { users: this.users, labels });
  }

  // ---------------------------------------------------------------- lifecycle

  async start() {
    this.server = http.createServer((req, res) => this.#serve(req, res));
    this.server.keepAliveTimeout = Number(process.env.SLACK_FAKE_KEEPALIVE_MS ?? 1000);
    // A backlog like a real front door's: Slack and the SaaS apps take bursts of new connections
    // (Deputy opens hundreds at once under load), where Node's default of 511 drops SYNs.
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', 4096, resolve));
    this.port = this.server.address().port;
    this.baseUrl = `http://127.0.0.1:${this.port}`;
    this.apiUrl = `${this.baseUrl}/api`;
    return this;
  }

  async stop() {
    if (!this.server) return;
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(resolve));
  }

  // ---------------------------------------------------------------- recording

  clear() {
    this.calls = [];
    this.faults.clear();
  }

  callsOf(method) {
    return this.calls.filter((c) => c.method === method);
  }

  /** Resolves with the first recorded call (past or future) matching a method name or predicate. */
  waitForCall(match, { timeoutMs = 5000 } = {}) {
    const predicate = typeof match === 'function' ? match : (c) => c.method === match && !c.failed;
    const found = this.calls.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve };
      this.waiters.push(waiter);
      setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        const seen = this.calls.map((c) => `${c.method}${c.failed ? ` (failed ${c.status})` : ''}`).join(', ') || 'none';
        reject(new Error(`no matching Slack call within ${timeoutMs} ms; calls so far: ${seen}`));
      }, timeoutMs);
    });
  }

  /**
   * Makes the next `times` calls of `method` fail: {status: 429, retryAfter} answers HTTP 429
   * with Retry-After; {status: 500|503} answers that status; {okFalse: 'error_code'} answers
   * HTTP 200 with ok:false.
   */
  failNext(method, { status, retryAfter = 1, times = 1, okFalse } = {}) {
    this.faults.set(method, { status, retryAfter, remaining: times, okFalse });
  }

  /** Calls `listener(call)` for every call Deputy makes from now on; returns an unsubscribe. */
  subscribe(listener) {
    this.listeners = [...(this.listeners ?? []), listener];
    return () => { this.listeners = this.listeners.filter((l) => l !== listener); };
  }

  #record(call) {
    call.at = Date.now();
    call.seq = this.seq++;
    this.calls.push(call);
    for (const listener of this.listeners ?? []) listener(call);
    for (const waiter of [...this.waiters]) {
      if (waiter.predicate(call)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(call);
      }
    }
  }

  // ---------------------------------------------------------------- Web API

  async #serve(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    // delayMs: how long every Web API and response_url call takes (Slack: 50-300 ms).
    if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, this.baseUrl);
    const send = (status, body, headers = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json; charset=utf-8', ...headers });
      res.end(text);
    };

    let body = {};
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
    try {
      if (type === 'application/json' && raw) body = JSON.parse(raw);
      else if (type === 'application/x-www-form-urlencoded') body = Object.fromEntries(new URLSearchParams(raw));
    } catch {
      return send(200, { ok: false, error: 'invalid_json' });
    }
    for (const [k, v] of url.searchParams) body[k] ??= v;

    if (url.pathname.startsWith('/response/')) {
      const method = 'response_url';
      if (this.#fault(method, send, { method, body, headers: req.headers, id: url.pathname.slice(10) })) return;
      this.#record({ method, id: url.pathname.slice('/response/'.length), body, headers: req.headers });
      return send(200, 'ok');
    }
    if (!url.pathname.startsWith('/api/')) return send(404, 'not found');
    const method = url.pathname.slice('/api/'.length);
    const call = { method, body, headers: req.headers, raw };

    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : body.token;
    if (!token) {
      this.#record({ ...call, failed: true, status: 200, error: 'not_authed' });
      return send(200, { ok: false, error: 'not_authed' });
    }
    if (token !== this.botToken) {
      this.#record({ ...call, failed: true, status: 200, error: 'invalid_auth' });
      return send(200, { ok: false, error: 'invalid_auth' });
    }
    if (this.#fault(method, send, call)) return;

    const answer = this.#method(method, body);
    if (!answer.ok) this.#record({ ...call, failed: true, status: 200, error: answer.error });
    else this.#record({ ...call, response: answer });
    return send(200, answer);
  }

  #fault(method, send, call) {
    const fault = this.faults.get(method);
    if (!fault || fault.remaining <= 0) return false;
    fault.remaining -= 1;
    if (fault.okFalse) {
      this.#record({ ...call, failed: true, status: 200, error: fault.okFalse });
      send(200, { ok: false, error: fault.okFalse });
    } else if (fault.status === 429) {
      this.#record({ ...call, failed: true, status: 429 });
      send(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(fault.retryAfter) });
    } else {
      this.#record({ ...call, failed: true, status: fault.status });
      send(fault.status, 'upstream failure');
    }
    return true;
  }

  #validMessage(body) {
    if (!body.channel) return 'channel_not_found';
    if (body.blocks !== undefined) {
      let blocks = body.blocks;
      if (typeof blocks === 'string') {
        try {
          blocks = JSON.parse(blocks);
        } catch {
          return 'invalid_blocks';
        }
      }
      if (!Array.isArray(blocks) || blocks.length > 50 || blocks.some((b) => !b || typeof b.type !== 'string')) return 'invalid_blocks';
      for (const b of blocks) {
        if (b.type === 'section' && b.text && b.text.text.length > 3000) return 'invalid_blocks';
        if (b.type === 'header' && b.text.text.length > 150) return 'invalid_blocks';
        for (const e of b.elements ?? []) {
          if (e.type === 'button' && (e.text?.text?.length ?? 0) > 75) return 'invalid_blocks';
        }
      }
    }
    if (!body.text && !body.blocks) return 'no_text';
    return undefined;
  }

  #method(method, body) {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: `https://${this.teamDomain}.slack.com/`, team: this.teamDomain, user: 'deputy', team_id: this.teamId, user_id: this.botUserId, bot_id: 'B0DEPUTY' };
      case 'chat.postMessage': {
        const error = this.#validMessage(body);
        if (error) return { ok: false, error };
        const ts = nextTs();
        return { ok: true, channel: body.channel, ts, message: { type: 'message', text: body.text ?? '', bot_id: 'B0DEPUTY', ts, thread_ts: body.thread_ts, blocks: body.blocks } };
      }
      case 'chat.postEphemeral': {
        const error = this.#validMessage(body);
        if (error) return { ok: false, error };
        if (!body.user) return { ok: false, error: 'user_not_in_channel' };
        return { ok: true, message_ts: nextTs() };
      }
      case 'chat.update': {
        const error = this.#validMessage(body);
        if (error) return { ok: false, error };
        if (!body.ts) return { ok: false, error: 'message_not_found' };
        return { ok: true, channel: body.channel, ts: body.ts, text: body.text ?? '' };
      }
      case 'users.info': {
        const user = this.users[body.user];
        if (!user) return { ok: false, error: 'user_not_found' };
        return {
          ok: true,
          user: {
            id: body.user, team_id: this.teamId, name: user.name, real_name: user.realName, tz: 'Europe/Berlin', is_bot: false,
            profile: { email: user.email, real_name: user.realName, display_name: user.name },
          },
        };
      }
      case 'conversations.open': {
        const user = String(body.users ?? '').split(',')[0];
        if (!user) return { ok: false, error: 'user_not_found' };
        return { ok: true, channel: { id: this.dmChannelOf(user) } };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  /** The DM channel between the bot and a user (stable per user). */
  dmChannelOf(user) {
    return `D${user.replace(/^U/, '')}`;
  }

  // ---------------------------------------------------------------- sending as Slack

  sign(timestamp, rawBody, secret = this.signingSecret) {
    return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
  }

  async sendRaw({ body, contentType, timestamp = Math.floor(Date.now() / 1000), signature, headers = {} }) {
    if (!this.deputyUrl) throw new Error('SlackFake.deputyUrl is not set');
    const r = await fetch(`${this.deputyUrl}/slack/events`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': contentType,
        'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': signature ?? this.sign(timestamp, body),
        ...headers,
      },
      body,
    });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, headers: r.headers, text, json };
  }

  // responseId: chosen by a caller that must know it before Deputy can answer (the answer may
  // arrive before the ack has been read).
  // text: as Slack sends it (escaped, with <…> forms); typed: as the person typed it.
  async sendSlashCommand({ user, channel = 'C0GENERAL', channelName = 'general', text = '', typed, command = '/deputy', responseId = randomId('R', 12) }) {
    if (typed !== undefined) text = this.slackText(typed, { labels: true });
    const responseUrl = `${this.baseUrl}/response/${responseId}`;
    const fields = {
      token: 'fakeVerificationToken',
      team_id: this.teamId,
      team_domain: this.teamDomain,
      channel_id: channel,
      channel_name: channelName,
      user_id: user,
      user_name: this.users[user]?.name ?? user.toLowerCase(),
      command,
      text,
      api_app_id: this.apiAppId,
      is_enterprise_install: 'false',
      response_url: responseUrl,
      trigger_id: `${Date.now()}.${randomBytes(4).readUInt32BE()}.${randomBytes(16).toString('hex')}`,
    };
    const r = await this.sendRaw({ body: formEncode(fields), contentType: 'application/x-www-form-urlencoded' });
    return { ...r, responseUrl, responseId };
  }

  envelope(event, eventId = randomId('Ev', 10)) {
    return {
      token: 'fakeVerificationToken',
      team_id: this.teamId,
      api_app_id: this.apiAppId,
      event,
      type: 'event_callback',
      event_id: eventId,
      event_time: Math.floor(Date.now() / 1000),
      authorizations: [{ enterprise_id: null, team_id: this.teamId, user_id: this.botUserId, is_bot: true, is_enterprise_install: false }],
      is_ext_shared_channel: false,
      event_context: `4-${randomBytes(12).toString('hex')}`,
    };
  }

  async sendEvent(event, { eventId = randomId('Ev', 10), retryNum, retryReason = 'http_timeout' } = {}) {
    const body = JSON.stringify(this.envelope(event, eventId));
    const headers = {};
    if (retryNum !== undefined) {
      headers['x-slack-retry-num'] = String(retryNum);
      headers['x-slack-retry-reason'] = retryReason;
    }
    const r = await this.sendRaw({ body, contentType: 'application/json', headers });
    return { ...r, eventId, ts: event.ts };
  }

  /** Slack's own retry schedule, compressed: the same event_id, X-Slack-Retry-Num 1..n. */
  async deliverWithRetries(event, { attempts = 3, eventId = randomId('Ev', 10), retryReason = 'http_timeout' } = {}) {
    const results = [await this.sendEvent(event, { eventId })];
    for (let n = 1; n < attempts; n++) results.push(await this.sendEvent(event, { eventId, retryNum: n, retryReason }));
    return results;
  }

  #richText(text) {
    return [{ type: 'rich_text', block_id: randomBytes(2).toString('hex'), elements: [{ type: 'rich_text_section', elements: [{ type: 'text', text }] }] }];
  }

  async sendAppMention({ user, channel = 'C0GENERAL', text, typed, threadTs }) {
    if (typed !== undefined) text = this.slackText(typed);
    const ts = nextTs();
    const full = `<@${this.botUserId}> ${text}`;
    const event = {
      type: 'app_mention', user, text: full, ts, channel, event_ts: ts, team: this.teamId,
      client_msg_id: randomBytes(16).toString('hex'), blocks: this.#richText(full),
    };
    if (threadTs) event.thread_ts = threadTs;
    return this.sendEvent(event);
  }

  // threadTs: written in the thread of that message; inThread: in a new thread of its own
  // (so that several DMs at once each get a reply that can be told apart).
  async sendDirectMessage({ user, channel = this.dmChannelOf(user), text, typed, threadTs, inThread = false }) {
    if (typed !== undefined) text = this.slackText(typed);
    if (inThread) threadTs = nextTs();
    const ts = nextTs();
    const event = {
      type: 'message', channel, user, text, ts, event_ts: ts, channel_type: 'im', team: this.teamId,
      client_msg_id: randomBytes(16).toString('hex'), blocks: this.#richText(text),
    };
    if (threadTs) event.thread_ts = threadTs;
    const seq = this.seq;
    const sent = await this.sendEvent(event);
    return { ...sent, seq, user, channel, threadTs };
  }

  /**
   * Deputy's answer to a DM sent with sendDirectMessage: inline in the DM (Slack's default
   * for a message not in a thread), or in the thread it was written in.
   */
  answerTo(sent, { timeoutMs = 5000, match = () => true } = {}) {
    return this.waitForCall(
      (c) => c.method === 'chat.postMessage' && !c.failed && c.seq >= sent.seq && [sent.channel, sent.user].includes(c.body.channel) &&
        (c.body.thread_ts ?? '') === (sent.threadTs ?? '') && match(c),
      { timeoutMs },
    );
  }

  async sendBlockAction({ user, actionId, value, blockId = randomBytes(3).toString('hex'), messageTs = nextTs(), channel = 'C0GENERAL', isEphemeral = false, threadTs, responseUrl, text = 'button' }) {
    const payload = {
      type: 'block_actions',
      user: { id: user, username: this.users[user]?.name ?? user, name: this.users[user]?.name ?? user, team_id: this.teamId },
      api_app_id: this.apiAppId,
      token: 'fakeVerificationToken',
      container: { type: 'message', message_ts: messageTs, channel_id: channel, is_ephemeral: isEphemeral },
      trigger_id: `${Date.now()}.${randomBytes(4).readUInt32BE()}.${randomBytes(16).toString('hex')}`,
      team: { id: this.teamId, domain: this.teamDomain },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: channel, name: channel.startsWith('D') ? 'directmessage' : 'general' },
      response_url: responseUrl ?? `${this.baseUrl}/response/${randomId('A', 12)}`,
      actions: [{ action_id: actionId, block_id: blockId, text: { type: 'plain_text', text, emoji: true }, value, type: 'button', action_ts: `${Date.now() / 1000}` }],
      state: { values: {} },
    };
    if (!isEphemeral) payload.message = { type: 'message', user: this.botUserId, ts: messageTs, thread_ts: threadTs, bot_id: 'B0DEPUTY', text: '' };
    return this.sendRaw({ body: formEncode({ payload: JSON.stringify(payload) }), contentType: 'application/x-www-form-urlencoded' });
  }

  async sendUrlVerification(challenge) {
    const body = JSON.stringify({ token: 'Jhj5dZrVaK7ZwHHjRyZWjbDl', challenge, type: 'url_verification' });
    return this.sendRaw({ body, contentType: 'application/json' });
  }
}
