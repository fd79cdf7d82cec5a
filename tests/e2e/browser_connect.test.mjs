// A person connecting their account in a real browser: Deputy's connect link, the
// authorization server's login and consent pages, and back to Deputy's success page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startStack, connectLink } from '../support/stack.mjs';
import { launchChromium, ARTIFACTS } from '../support/browser.mjs';

let stack;
let browser;

before(async () => {
  stack = await startStack();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('headless Chromium: connect link → login → consent → "Connected as alice@example.com — you can return to Slack"', async () => {
  const { slack } = stack;
  const { url } = await connectLink(slack, 'U0ALICE');
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('input[name="login"]');
  await page.screenshot({ path: join(ARTIFACTS, 'connect-1-login.png') });
  await page.fill('input[name="login"]', 'alice');
  await page.fill('input[name="password"]', 'pass');
  await page.click('button:has-text("Sign in")');
  await page.waitForSelector('button:has-text("Continue")');
  await page.screenshot({ path: join(ARTIFACTS, 'connect-2-consent.png') });
  await page.click('button:has-text("Continue")');
  await page.waitForURL(/\/oauth\/callback/);
  const title = await page.textContent('#title');
  await page.screenshot({ path: join(ARTIFACTS, 'connect-3-connected.png') });
  assert.equal(title, 'Connected to Demo CRM');
  assert.equal(await page.textContent('#message'), 'Connected as alice@example.com — you can return to Slack.');
  await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.body.channel === 'U0ALICE' && /Connected to Demo CRM/.test(c.body.text));
  await context.close();
});
