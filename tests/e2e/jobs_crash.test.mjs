// Jobs are durable: Deputy killed with SIGKILL while 50 jobs are queued or running loses
// none and repeats no app call; a call that may have happened is reported, not repeated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FetchBrowser } from '../support/auth-server.mjs';
import { Deputy, eventually } from '../support/deputy.mjs';
import { startStack, connectLink } from '../support/stack.mjs';

const FINAL = /Created opportunity|cannot tell whether it happened/;

// On PostgreSQL the restarted process takes over the killed run's claims once that run has been
// silent for the takeover time (10 s), as any other process sharing the database would.
test('kill -9 during 50 queued jobs loses none and duplicates none', async (t) => {
  const stack = await startStack({ withApps: true });
  const { slack, apps } = stack;
  let second;
  try {
    const { url } = await connectLink(slack, 'U0ALICE', 'salesforce');
    const browser = new FetchBrowser();
    await browser.request(await browser.login(url, { login: 'alice' }));
    await slack.waitForCall((c) => c.method === 'chat.postMessage' && /Connected to Salesforce/.test(c.body.text));

    apps.delayMs = 120;  // slow enough that the kill lands mid-queue, with calls in flight
    const names = Array.from({ length: 50 }, (_, i) => `crash-${String(i).padStart(2, '0')}`);
    const sent = await Promise.all(names.map((name) => slack.sendSlashCommand({ user: 'U0ALICE', text: `create opportunity ${name} 1 2026-12-31` })));
    assert.ok(sent.every((s) => s.status === 200), 'every command was acknowledged');
    await eventually(() => apps.recordsOf('Opportunity').length >= 8, { timeoutMs: 20000, message: 'some jobs ran' });
    await stack.deputy.kill9();
    const createdBeforeRestart = apps.recordsOf('Opportunity').length;
    const answeredBeforeKill = sent.filter((s) => slack.calls.some((c) => c.method === 'response_url' && c.id === s.responseId && /Created opportunity/.test(c.body.text))).length;
    assert.ok(createdBeforeRestart < 50, `the kill came too late (${createdBeforeRestart} done)`);

    second = new Deputy({ env: stack.deputy.extraEnv, dir: stack.deputy.dir, config: stack.deputy.config });
    second.port = stack.deputy.port;
    await second.start();

    const finalOf = (s) => slack.calls.filter((c) => c.method === 'response_url' && c.id === s.responseId && FINAL.test(c.body.text));
    await eventually(() => sent.every((s) => finalOf(s).length > 0), { timeoutMs: 60000, message: 'every job finished or failed visibly' });

    const created = apps.recordsOf('Opportunity').map((r) => r.fields.Name);
    assert.equal(new Set(created).size, created.length, 'no opportunity was created twice');
    let unknown = 0;
    for (const [i, s] of sent.entries()) {
      const texts = finalOf(s).map((c) => c.body.text);
      const count = created.filter((n) => n === names[i]).length;
      if (texts.some((t) => /Created opportunity/.test(t))) {
        assert.equal(count, 1, `${names[i]} reported done exists once`);
      } else {
        // Only a call that may have reached the app before the kill is left to the person to check.
        assert.match(texts[0], /Deputy stopped while step \*create\* was talking to Salesforce/);
        unknown += 1;
      }
    }
    t.diagnostic(`${createdBeforeRestart} created and ${answeredBeforeKill} answered before the kill, ${created.length} in the end, ${unknown} reported as unknown outcome`);
    // Jobs wait on the app without a thread each, so every job not finished at the kill may
    // have had its call in flight; only those can be reported as unknown.
    assert.ok(unknown <= 50 - answeredBeforeKill, `unknown outcomes only for jobs unfinished at the kill (got ${unknown}, ${answeredBeforeKill} answered before it)`);
    assert.ok(apps.calls.filter((c) => c.method === 'POST').length <= 50, 'no call was repeated');
  } finally {
    await second?.stop();
    await stack.stop();
  }
});
