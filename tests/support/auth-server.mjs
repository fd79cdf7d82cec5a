// A real, certified OpenID Connect authorization server (oidc-provider) on loopback, with
// plain login and consent pages a person or a headless browser can fill in, and test hooks:
// token-endpoint counters and fault injection, revocation log, introspection, and the
// secrets it issued (so tests can look for them where they must not be).
import http from 'node:http';
import Provider from 'oidc-provider';

const DEFAULT_ACCOUNTS = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Example' },
  bob: { email: 'bob@example.com', email_verified: true, name: 'Bob Example' },
  carol: { email: 'carol@example.com', email_verified: true, name: 'Carol Example' },
  admin: { email: 'admin@example.com', email_verified: true, name: 'Ada Admin' },
  shared: { email: 'integration@example.com', email_verified: true, name: 'Integration User' },
};

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;max-width:28rem;margin:3rem auto}label{display:block;margin:.5rem 0}</style></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

async function readForm(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return Object.fromEntries(new URLSearchParams(raw));
}

export class AuthServer {
  constructor({ clients = [], accounts = {}, accessTokenTtl = 3600, port = 0, alwaysPromptLogin = false } = {}) {
    // One browser may stand for several people (the playground): ask who logs in every time.
    this.alwaysPromptLogin = alwaysPromptLogin;
    this.clientSpecs = clients;
    this.accounts = { ...DEFAULT_ACCOUNTS, ...accounts };
    this.accessTokenTtl = accessTokenTtl;
    this.requestedPort = port;
    this.tokenRequests = [];
    this.revocations = [];
    this.issued = { accessTokens: [], refreshTokens: [], codes: [], verifiers: [] };
    this.faults = [];
    this.down = false;
  }

  async start() {
    this.server = http.createServer((req, res) => this.#route(req, res));
    await new Promise((r) => this.server.listen(this.requestedPort, '127.0.0.1', r));
    this.port = this.server.address().port;
    this.issuer = `http://127.0.0.1:${this.port}`;
    const accounts = this.accounts;
    this.provider = new Provider(this.issuer, {
      clients: this.clientSpecs.map((c) => ({
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        ...c,
      })),
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: false },
        revocation: { enabled: true, allowedPolicy: async () => true },
        introspection: { enabled: true, allowedPolicy: async () => true },
        userinfo: { enabled: true },
      },
      rotateRefreshToken: true,
      issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
      ttl: { AccessToken: () => this.accessTokenTtl, RefreshToken: 14 * 24 * 3600, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 14 * 24 * 3600, IdToken: 3600 },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      findAccount: async (ctx, sub) => {
        const account = accounts[sub];
        if (!account) return undefined;
        return { accountId: sub, claims: async () => ({ sub, ...account }) };
      },
      interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
      cookies: { keys: ['deputy-test-cookie-key'] },
      renderError: async (ctx, out) => {
        ctx.type = 'html';
        ctx.body = page('Error', `<p id="error">${escape(out.error)}: ${escape(out.error_description ?? '')}</p>`);
      },
    });
    this.provider.proxy = false;
    this.provider.use(async (ctx, next) => {
      if (ctx.path === '/token' && ctx.method === 'POST') {
        // tokenDelayMs: how long the token endpoint takes (real ones: 100-300 ms, sometimes hanging).
        if (this.tokenDelayMs) await new Promise((resolve) => setTimeout(resolve, this.tokenDelayMs));
        if (this.down) {
          this.tokenRequests.push({ failed: true, status: 503, at: Date.now() });
          ctx.status = 503;
          ctx.body = 'down for maintenance';
          return;
        }
        const fault = this.faults.find((f) => f.remaining > 0);
        if (fault) {
          fault.remaining -= 1;
          this.tokenRequests.push({ failed: true, status: fault.status, at: Date.now() });
          ctx.status = fault.status;
          ctx.body = fault.body ?? '';
          if (fault.retryAfter) ctx.set('Retry-After', String(fault.retryAfter));
          return;
        }
      }
      if (ctx.path === '/token/revocation' && ctx.method === 'POST') {
        this.revocations.push({ at: Date.now() });
        // revocationDelayMs: a revocation endpoint that takes its time.
        if (this.revocationDelayMs) await new Promise((resolve) => setTimeout(resolve, this.revocationDelayMs));
      }
      await next();
    });
    this.provider.on('grant.success', (ctx) => {
      const params = ctx.oidc.params ?? {};
      this.tokenRequests.push({ grantType: params.grant_type, at: Date.now() });
      if (params.code_verifier) this.issued.verifiers.push(params.code_verifier);
    });
    this.provider.on('grant.error', (ctx, error) => {
      this.tokenRequests.push({ grantType: ctx.oidc?.params?.grant_type, error: error.error, at: Date.now() });
    });
    // Opaque access tokens are reported as saved, structured (JWT) ones as issued.
    this.provider.on('access_token.saved', (token) => this.issued.accessTokens.push(token.jti));
    this.provider.on('access_token.issued', (token) => this.issued.accessTokens.push(token.jti));
    this.provider.on('refresh_token.saved', (token) => this.issued.refreshTokens.push(token.jti));
    this.provider.on('authorization_code.saved', (code) => this.issued.codes.push(code.jti));
    this.callback = this.provider.callback();
    return this;
  }

  async stop() {
    this.server?.closeAllConnections?.();
    await new Promise((r) => this.server.close(r));
  }

  /** Token requests that reached the real endpoint for a grant type (faults not counted). */
  countTokenRequests(grantType) {
    return this.tokenRequests.filter((r) => r.grantType === grantType).length;
  }

  failNextToken({ status = 500, body = '', times = 1, retryAfter } = {}) {
    this.faults.push({ status, body, remaining: times, retryAfter });
  }

  setDown(down) {
    this.down = down;
  }

  async introspect(token, { clientId, clientSecret } = this.clientSpecs[0]) {
    const r = await fetch(`${this.issuer}/token/introspection`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId ?? this.clientSpecs[0].client_id)}:${encodeURIComponent(clientSecret ?? this.clientSpecs[0].client_secret)}`).toString('base64')}`,
      },
      body: new URLSearchParams({ token }).toString(),
    });
    return r.json();
  }

  /** Ends every grant an account holds, as an administrator at the app would. */
  async revokeGrantsOf(accountId) {
    for (const jti of [...this.issued.refreshTokens]) {
      const token = await this.provider.RefreshToken.find(jti);
      if (token && token.accountId === accountId) {
        const grant = await this.provider.Grant.find(token.grantId);
        await grant?.destroy();
        await token.destroy();
      }
    }
    for (const jti of [...this.issued.accessTokens]) {
      const token = await this.provider.AccessToken.find(jti);
      if (token && token.accountId === accountId) await token.destroy();
    }
  }

  async #route(req, res) {
    const url = new URL(req.url, this.issuer);
    const match = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
    if (!match) return this.callback(req, res);
    try {
      const [, uid, action] = match;
      const details = await this.provider.interactionDetails(req, res);
      if (!action) {
        res.setHeader('content-type', 'text/html; charset=utf-8');
        const mustSignIn = details.prompt.name === 'login' || (this.alwaysPromptLogin && !details.lastSubmission?.login);
        if (mustSignIn) {
          return res.end(page('Sign in to the demo authorization server', `
<form method="post" action="/interaction/${uid}/login">
<label>Login <input name="login" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit">Cancel</button></form>`));
        }
        return res.end(page('Allow access?', `
<p id="consent">Deputy wants to act as <b>${escape(details.session?.accountId ?? '')}</b> (${escape(details.params.scope ?? '')}).</p>
<form method="post" action="/interaction/${uid}/confirm"><button type="submit">Continue</button></form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit">Deny</button></form>`));
      }
      if (action === 'login') {
        const form = await readForm(req);
        if (!this.accounts[form.login] || form.password !== 'pass') {
          res.setHeader('content-type', 'text/html; charset=utf-8');
          res.statusCode = 401;
          return res.end(page('Sign-in failed', `<p id="error">Unknown login or wrong password.</p><a href="/interaction/${uid}">Try again</a>`));
        }
        return await this.provider.interactionFinished(req, res, { login: { accountId: form.login } }, { mergeWithLastSubmission: false });
      }
      if (action === 'abort') {
        return await this.provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The person declined.' }, { mergeWithLastSubmission: false });
      }
      const { prompt, params, session } = details;
      const grant = details.grantId ? await this.provider.Grant.find(details.grantId) : new this.provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      if (prompt.details.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      return await this.provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (error) {
      res.statusCode = 400;
      res.setHeader('content-type', 'text/plain');
      res.end(`interaction failed: ${error.message}`);
    }
  }
}

/** A tiny cookie-keeping browser on fetch, for tests that need no real browser. */
export class FetchBrowser {
  constructor() {
    this.cookies = new Map();
  }

  #cookieHeader() {
    return [...this.cookies.entries()].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  #store(response) {
    for (const line of response.headers.getSetCookie?.() ?? []) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /max-age=0/i.test(a) || /expires=thu, 01 jan 1970/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url, { method = 'GET', form } = {}) {
    const r = await fetch(url, {
      method,
      redirect: 'manual',
      headers: { cookie: this.#cookieHeader(), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    this.#store(r);
    const text = await r.text();
    const location = r.headers.get('location');
    return { status: r.status, text, location: location ? new URL(location, url).toString() : undefined };
  }

  /** Follows redirects until `stop(url)` is true for the next location, or a page is shown. */
  async follow(url, { stop = () => false, method, form } = {}) {
    let current = url;
    let response = await this.request(current, { method, form });
    for (let hops = 0; hops < 20 && response.location; hops++) {
      if (stop(response.location)) return { ...response, stoppedAt: response.location };
      current = response.location;
      response = await this.request(current);
    }
    return { ...response, url: current };
  }

  /**
   * Opens Deputy's connect link, signs in at the authorization server and consents (or denies),
   * and returns the redirect back to Deputy's callback without following it.
   */
  async login(connectUrl, { login, password = 'pass', deny = false, callbackPrefix }) {
    const prefix = callbackPrefix ?? new URL('/oauth/callback', connectUrl).toString();
    const isCallback = (u) => u.startsWith(prefix);
    let step = await this.follow(connectUrl, { stop: isCallback });
    for (let i = 0; i < 4 && !step.stoppedAt; i++) {
      const action = step.text.match(/action="([^"]+\/(login|confirm))"/);
      if (!action) throw new Error(`unexpected page at ${step.url}: ${step.text.slice(0, 300)}`);
      const target = new URL(action[1], step.url).toString();
      if (deny) {
        step = await this.follow(target.replace(/\/(login|confirm)$/, '/abort'), { method: 'POST', form: {}, stop: isCallback });
      } else if (action[2] === 'login') {
        step = await this.follow(target, { method: 'POST', form: { login, password }, stop: isCallback });
      } else {
        step = await this.follow(target, { method: 'POST', form: {}, stop: isCallback });
      }
    }
    if (!step.stoppedAt) throw new Error(`login did not come back to Deputy: ${step.status} ${step.text.slice(0, 300)}`);
    return step.stoppedAt;
  }
}
