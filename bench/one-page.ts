/**
 * A one-page pull (50 albums from the emulator, to /dev/null) through the bin, as a scheduled
 * small pull or `check` pays it: mostly start-up. With several build directories (each with its
 * own dist/, e.g. a git worktree of an older commit), their runs alternate, so they share the
 * machine's noise. Medians of `runs`.
 *
 *   npx node bench/one-page.ts [runs=15] [build dir…]   (default: this checkout)
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startEmulator } from '../src/emulator/server.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.argv[2] ?? 15);
const builds = process.argv.length > 3 ? process.argv.slice(3) : [root];
const emulator = await startEmulator({ albums: 50 });
const env = {
  ...process.env,
  SPOTIFY_API_URL: emulator.url,
  SPOTIFY_ACCOUNTS_URL: emulator.url,
  SPOTIFY_CLIENT_ID: 'emulator-id',
  SPOTIFY_CLIENT_SECRET: 'emulator-secret',
  // The bin's shebang runs `node` from PATH: the Node running this comes first.
  PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
};
const times = new Map<string, number[]>(builds.map((b) => [b, []]));
try {
  for (let i = 0; i < runs; i++) {
    for (const build of builds) {
      const started = performance.now();
      await run(
        join(build, 'dist/bin/spotify-batch.js'),
        ['new-releases', '--out', '/dev/null', '--quiet'],
        { env },
      );
      times.get(build)?.push(performance.now() - started);
    }
  }
} finally {
  await emulator.stop();
}
for (const [build, ms] of times) {
  ms.sort((a, b) => a - b);
  const median = ms[ms.length >> 1] as number;
  console.log(
    `${build}: median ${median.toFixed(0)} ms (min ${ms[0]?.toFixed(0)}, max ${ms.at(-1)?.toFixed(0)}), ${runs} runs`,
  );
}
