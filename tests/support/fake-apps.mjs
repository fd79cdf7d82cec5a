// Small stand-ins for the business apps the example recipes call: Salesforce REST
// (sobjects/Opportunity), ServiceNow Table API (incident, sysapproval_approver) and Box search.
// Every call must carry a bearer token that the local authorization server says is active
// (RFC 7662 introspection); each record remembers which account created or changed it, so
// tests can check who acted.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export const SALESFORCE_BASE = '/services/data/v60.0';

export class FakeApps {
  /**
   * @param {object} options
   * @param {string} options.introspectionUrl the authorization server's introspection endpoint
   * @param {string} options.clientId credentials allowed to introspect
   * @param {string} options.clientSecret
   */
  constructor({ introspectionUrl, clientId, clientSecret, port = 0, introspectionCacheMs = 0 }) {
    // Benchmarks may cache introspection answers briefly, as API gateways do; tests do not.
    this.introspectionCacheMs = introspectionCacheMs;
    this.introspected = new Map();
    this.introspectionUrl = introspectionUrl;
    this.credentials = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
    this.requestedPort = port;
    this.records = [];  // { app, object, id, number, fields, createdBy, updatedBy, at }
    this.calls = [];    // { method, path, account, status }
    this.delayMs = 0;
    this.failures = [];
    this.inFlight = new Map();  // app path prefix -> { now, most }
    this.files = [
      { type: 'file', id: '1001', name: 'Q4 pricing.xlsx', owner: 'alice' },
      { type: 'file', id: '1002', name: 'Acme contract.pdf', owner: 'bob' },
      { type: 'file', id: '1003', name: 'Acme renewal deck.pptx', owner: 'alice' },
    ];
  }

  async start() {
    this.server = http.createServer((req, res) => {
      this.#handle(req, res).catch((e) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: String(e) }));
      });
    });
    // A backlog like a real front door's: Slack and the SaaS apps take bursts of new connections
    // (Deputy opens hundreds at once under load), where Node's default of 511 drops SYNs.
    await new Promise((r) => this.server.listen(this.requestedPort, '127.0.0.1', 4096, r));
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async stop() {
    this.server?.closeAllConnections?.();
    await new Promise((r) => this.server.close(r));
  }

  get salesforceBase() { return `${this.url}${SALESFORCE_BASE}`; }
  get servicenowBase() { return this.url; }
  get boxBase() { return `${this.url}/2.0`; }

  /**
   * The next `times` API calls (under `path`, when given) answer `status` with `body` and
   * `headers` (e.g. { 'retry-after': '2' }).
   */
  failNext({ status = 503, body = { message: 'temporarily unavailable' }, times = 1, headers = {}, path = '' } = {}) {
    this.failures.push({ status, body, headers, path, remaining: times });
  }

  /** The most calls under `prefix` that were being answered at one time. */
  mostInFlight(prefix) {
    return this.inFlight.get(prefix)?.most ?? 0;
  }

  recordsOf(object) {
    return this.records.filter((r) => r.object === object);
  }

  /** A pending approval a ServiceNow approver can act on. */
  addApproval({ number, approver, requestedBy = 'carol', short_description = 'Laptop for new hire' }) {
    const record = {
      app: 'servicenow', object: 'sysapproval_approver', id: randomBytes(16).toString('hex'), number,
      fields: { state: 'requested', approver, sysapproval: { number, short_description }, requested_by: requestedBy },
      createdBy: requestedBy, updatedBy: '', at: Date.now(),
    };
    this.records.push(record);
    return record;
  }

  async #introspect(token) {
    if (this.introspectionCacheMs) {
      const cached = this.introspected.get(token);
      if (cached && cached.until > Date.now()) return cached.info;
      const info = await this.#introspectRemote(token);
      this.introspected.set(token, { info, until: Date.now() + this.introspectionCacheMs });
      return info;
    }
    return this.#introspectRemote(token);
  }

  async #introspectRemote(token) {
    const r = await fetch(this.introspectionUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${this.credentials}` },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
    });
    if (!r.ok) return { active: false };
    return r.json();
  }

  async #handle(req, res) {
    const url = new URL(req.url, this.url);
    const send = (status, body, headers = {}) => {
      this.calls.push({ method: req.method, path: url.pathname, account: req.account ?? null, status, at: Date.now() });
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/') return send(200, this.#recordsPage());
    if (req.method === 'GET' && url.pathname === '/_records') return send(200, this.records);

    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ')) return send(401, [{ errorCode: 'INVALID_SESSION_ID', message: 'Session expired or invalid' }]);
    const info = await this.#introspect(auth.slice('Bearer '.length));
    if (!info.active) return send(401, [{ errorCode: 'INVALID_SESSION_ID', message: 'Session expired or invalid' }]);
    req.account = info.sub;

    let raw = '';
    for await (const chunk of req) raw += chunk;
    let body = {};
    if (raw) {
      try { body = JSON.parse(raw); } catch { return send(400, [{ errorCode: 'JSON_PARSER_ERROR', message: 'malformed JSON' }]); }
    }
    // delayMs: every app answers that late; delayByPath: {prefix: ms} for one app only.
    const prefix = [SALESFORCE_BASE, '/api/now', '/2.0'].find((p) => url.pathname.startsWith(p)) ?? '';
    const counted = this.inFlight.get(prefix) ?? { now: 0, most: 0 };
    this.inFlight.set(prefix, counted);
    counted.now += 1;
    counted.most = Math.max(counted.most, counted.now);
    try {
      const delay = Object.entries(this.delayByPath ?? {}).find(([p]) => url.pathname.startsWith(p))?.[1] ?? this.delayMs;
      if (delay) await new Promise((r) => setTimeout(r, delay));
    } finally {
      counted.now -= 1;
    }
    const failure = this.failures.find((f) => f.remaining > 0 && url.pathname.startsWith(f.path));
    if (failure) {
      failure.remaining -= 1;
      return send(failure.status, failure.body, failure.headers);
    }

    // Salesforce REST API
    if (req.method === 'POST' && url.pathname === `${SALESFORCE_BASE}/sobjects/Opportunity`) {
      for (const field of ['Name', 'StageName', 'CloseDate']) {
        if (!body[field]) return send(400, [{ errorCode: 'REQUIRED_FIELD_MISSING', message: `Required fields are missing: [${field}]`, fields: [field] }]);
      }
      const id = `006${randomBytes(6).toString('hex').toUpperCase()}`;
      // raw: the body as sent, to check digits JSON.parse would round.
      this.records.push({ app: 'salesforce', object: 'Opportunity', id, fields: body, raw, createdBy: info.sub, updatedBy: info.sub, at: Date.now() });
      return send(201, { id, success: true, errors: [] });
    }
    const sfRecord = url.pathname.match(new RegExp(`^${SALESFORCE_BASE}/sobjects/Opportunity/([^/]+)$`));
    if (req.method === 'GET' && sfRecord) {
      const record = this.records.find((r) => r.object === 'Opportunity' && r.id === sfRecord[1]);
      if (!record) return send(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
      return send(200, { Id: record.id, ...record.fields, CreatedById: record.createdBy });
    }

    // ServiceNow Table API
    if (req.method === 'POST' && url.pathname === '/api/now/table/incident') {
      if (!body.short_description) return send(400, { error: { message: 'short_description is mandatory', detail: '' }, status: 'failure' });
      const sysId = randomBytes(16).toString('hex');
      const number = `INC${String(10000 + this.recordsOf('incident').length + 1).padStart(7, '0')}`;
      const fields = { ...body, number, sys_id: sysId, state: '1', caller_id: info.sub };
      this.records.push({ app: 'servicenow', object: 'incident', id: sysId, number, fields, createdBy: info.sub, updatedBy: info.sub, at: Date.now() });
      return send(201, { result: fields });
    }
    if (req.method === 'GET' && url.pathname === '/api/now/table/sysapproval_approver') {
      // Understands the encoded queries the example recipe sends: sysapproval.number=…^approver=javascript:gs.getUserID()^state=requested
      const query = Object.fromEntries((url.searchParams.get('sysparm_query') ?? '').split('^').filter(Boolean).map((c) => c.split('=')));
      const matches = this.recordsOf('sysapproval_approver').filter((r) =>
        (!query['sysapproval.number'] || r.number === query['sysapproval.number']) &&
        (!query.approver || r.fields.approver === (query.approver === 'javascript:gs.getUserID()' ? info.sub : query.approver)) &&
        (!query.state || r.fields.state === query.state));
      return send(200, { result: matches.map((r) => ({ sys_id: r.id, state: r.fields.state, sysapproval: { value: r.number } })) });
    }
    const approval = url.pathname.match(/^\/api\/now\/table\/sysapproval_approver\/([0-9a-f]+)$/);
    if ((req.method === 'PATCH' || req.method === 'PUT') && approval) {
      const record = this.records.find((r) => r.object === 'sysapproval_approver' && r.id === approval[1]);
      if (!record) return send(404, { error: { message: 'No Record found', detail: 'Record doesn\'t exist or ACL restricts the record retrieval' }, status: 'failure' });
      if (record.fields.approver !== info.sub) return send(403, { error: { message: 'Operation Failed', detail: 'ACL Exception Update Failed due to security constraints' }, status: 'failure' });
      Object.assign(record.fields, body);
      record.updatedBy = info.sub;
      return send(200, { result: { sys_id: record.id, state: record.fields.state, comments: record.fields.comments ?? '' } });
    }

    // Box Content API
    if (req.method === 'GET' && url.pathname === '/2.0/search') {
      const q = (url.searchParams.get('query') ?? '').toLowerCase();
      const limit = Number(url.searchParams.get('limit') ?? 30);
      const entries = this.files.filter((f) => f.owner === info.sub && f.name.toLowerCase().includes(q)).slice(0, limit);
      return send(200, { total_count: entries.length, limit, offset: 0, entries: entries.map(({ owner, ...f }) => f) });
    }
    return send(404, [{ errorCode: 'NOT_FOUND', message: `no route ${req.method} ${url.pathname}` }]);
  }

  #recordsPage() {
    const rows = this.records.map((r) => `<tr><td>${escape(r.app)}</td><td>${escape(r.object)}</td><td>${escape(r.number ?? r.id)}</td>
<td>${escape(r.fields.Name ?? r.fields.short_description ?? r.fields.sysapproval?.short_description ?? '')}</td>
<td class="creator">${escape(r.createdBy)}</td><td>${escape(r.updatedBy)}</td><td>${escape(r.fields.state ?? r.fields.StageName ?? '')}</td></tr>`).join('');
    return `<!doctype html><html><head><meta charset="utf-8"><title>Demo apps: records</title>
<style>body{font-family:sans-serif;margin:2rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem}</style></head>
<body><h1>Records in the demo apps</h1><table><tr><th>app</th><th>object</th><th>id</th><th>name</th><th>created by</th><th>last changed by</th><th>state</th></tr>${rows}</table></body></html>`;
  }
}
