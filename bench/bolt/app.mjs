// The Bolt-js contender: Slack's own framework, signing secret check, immediate ack of
// /deputy (what Deputy's ack path does before its durable enqueue). One Node process.
// Usage: SLACK_SIGNING_SECRET=… PORT=… node app.mjs
import bolt from '@slack/bolt';

const app = new bolt.App({
  signingSecret: process.env.SLACK_SIGNING_SECRET,
  // Who the bot is, given up front: Bolt would otherwise call auth.test on Slack first.
  authorize: async () => ({ botToken: 'xoxb-fake-bench', botId: 'B0BENCH', botUserId: 'U0BENCHBOT' }),
  logLevel: process.env.BOLT_LOG_LEVEL ?? bolt.LogLevel.ERROR,
});
app.command('/deputy', async ({ ack }) => {
  await ack();
});
await app.start(Number(process.env.PORT ?? 3100));
console.log('bolt ready');
