// `node playground/main.mjs`: the demo behind the README's first command. Ctrl-C stops all.
import { startPlayground } from './playground.mjs';

const verbose = process.argv.includes('--verbose');
const playground = await startPlayground({
  port: Number(process.env.PLAYGROUND_PORT ?? 3001),
  fresh: true,
  log: (text) => { if (verbose) process.stdout.write(text); },
});
console.log(`
  Deputy playground is running.

  Open ${playground.url} in a browser: pick who you are, then try
    /deputy create opportunity "Acme renewal" 5000 2026-12-31
  Demo app records:       ${playground.apps.url}
  Demo login server:      ${playground.auth.issuer} (log in as alice, bob, carol or admin; password: pass)
  Deputy itself:          ${playground.deputy.url} (data in ./demo-data)

  Ctrl-C stops everything.${verbose ? '' : ' Add --verbose to see Deputy\'s log.'}
`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping…');
    await playground.stop();
    process.exit(0);
  });
}
