/**
 * `npm start`: the whole pipeline offline, the README's one-minute try-out. Starts the Spotify
 * emulator and a local S3-compatible server (s3rver) on loopback, prints the environment that
 * points the CLI at them (`export` lines), runs `spotify-batch new-releases` into a bucket
 * exactly as a user would, then reads the object back with a plain GET (what `curl` does).
 *
 *   npm start                 the pull and the read-back; then both servers stop
 *   npm start -- --keep       the same; then both stay up, with commands to try in another
 *                             terminal, until Ctrl-C (which removes what the local S3 stored)
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../src/emulator/server.ts';
import { startS3 } from './local-s3.ts';

const usage = 'usage: npm start [-- --keep]';
const args = process.argv.slice(2).filter((a) => a !== '--');
const keep = args.includes('--keep');
const unknown = args.filter((a) => a !== '--keep');
if (unknown.length > 0) {
  process.stderr.write(`npm start: unknown argument ${unknown[0]}; ${usage}\n`);
  process.exit(2);
}

const cli = fileURLToPath(new URL('../dist/bin/spotify-batch.js', import.meta.url));
const bucket = 'spotify-demo';
/** The bucket the README's and docs' examples write to, so that they run against this S3 too. */
const examples = 'my-bucket';
const key = 'spotify/album_details.csv';
const say = (text = '') => process.stdout.write(`${text}\n`);

const emulator = await startEmulator({ albums: 100 });
const s3 = await startS3();
let stopped = false;
const stop = async () => {
  if (stopped) return;
  stopped = true;
  await Promise.all([emulator.stop(), s3.stop()]);
};
try {
  await s3.createBucket(bucket);
  await s3.createBucket(examples);
  const env: Record<string, string> = {
    SPOTIFY_API_URL: emulator.url,
    SPOTIFY_ACCOUNTS_URL: emulator.url,
    SPOTIFY_CLIENT_ID: emulator.clientId,
    SPOTIFY_CLIENT_SECRET: emulator.clientSecret,
    ...(s3.env as Record<string, string>),
  };
  say(
    `The Spotify emulator on ${emulator.url}, a local S3 on ${s3.endpoint} (buckets ${bucket} and ${examples}).`,
  );
  say('The environment that points spotify-batch at them:');
  say();
  for (const [name, value] of Object.entries(env)) say(`export ${name}=${value}`);
  say();
  const pull = ['new-releases', '--out', `s3://${bucket}/${key}`];
  say(`$ npx spotify-batch ${pull.join(' ')}`);
  const child = spawn(process.execPath, [cli, ...pull], {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) {
    process.exitCode = code ?? 1;
  } else {
    const url = `${s3.endpoint}/${bucket}/${key}`;
    say();
    say(`$ curl -s ${url} | sed -n 1,5p`);
    const got = await fetch(url);
    if (!got.ok) throw new Error(`GET ${url}: ${got.status} after a successful run`);
    const body = await got.text();
    say(body.split('\n').slice(0, 5).join('\n'));
    say(
      `(${Buffer.byteLength(body)} bytes in all, Content-Type ${got.headers.get('content-type')})`,
    );
    say();
    if (keep) {
      say('Both servers stay up until Ctrl-C. In another terminal, paste the export lines above,');
      say('then try a partitioned pull (one object per market, then _manifest.json) and read it:');
      say();
      say('  npx spotify-batch new-releases --market SE,DE \\');
      say(`    --out 's3://${bucket}/dt={date}/market={market}/albums.csv'`);
      say(
        `  curl -s "$AWS_ENDPOINT_URL_S3/${bucket}/dt=$(date -u +%F)/market=SE/albums.csv" | sed -n 1,3p`,
      );
      say();
      say(`The README's and docs' examples that write to s3://${examples}/ run here as written.`);
      say();
      await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
      say('\nStopped the emulator and the local S3 (what it stored is removed).');
    } else {
      say('npm start -- --keep does the same, then keeps both servers up for you to try more.');
    }
  }
} finally {
  await stop();
}
