/**
 * `npm start`: the whole pipeline, offline. Starts the Spotify emulator and a local
 * S3-compatible server (s3rver) on loopback, runs `spotify-batch new-releases` into a bucket
 * exactly as a user would, then reads the object back with GetObject and shows it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEmulator } from '../src/emulator/server.ts';
import { startS3 } from './local-s3.ts';

const cli = fileURLToPath(new URL('../dist/bin/spotify-batch.js', import.meta.url));
const bucket = 'spotify-demo';
const key = 'spotify/album_details.csv';

const emulator = await startEmulator({ albums: 100 });
const s3 = await startS3();
try {
  await s3.createBucket(bucket);
  process.stderr.write(
    `emulator (Spotify Web API) on ${emulator.url}; local S3 on ${s3.endpoint}\n`,
  );
  const args = ['new-releases', '--out', `s3://${bucket}/${key}`];
  process.stderr.write(`$ spotify-batch ${args.join(' ')}\n`);
  const child = spawn(process.execPath, [cli, ...args], {
    stdio: 'inherit',
    env: {
      ...process.env,
      ...s3.env,
      SPOTIFY_API_URL: emulator.url,
      SPOTIFY_ACCOUNTS_URL: emulator.url,
      SPOTIFY_CLIENT_ID: emulator.clientId,
      SPOTIFY_CLIENT_SECRET: emulator.clientSecret,
    },
  });
  const status = await new Promise<number>((resolve) =>
    child.on('close', (code) => resolve(code ?? 1)),
  );
  if (status !== 0) {
    process.exitCode = status;
  } else {
    const object = await s3.getObject(bucket, key);
    if (!object) throw new Error(`s3://${bucket}/${key} is missing after a successful run`);
    const lines = object.body.toString('utf8').split('\n');
    process.stderr.write(
      `\nGetObject s3://${bucket}/${key}: ${object.body.length} bytes, Content-Type ${object.contentType}; first rows:\n\n`,
    );
    process.stdout.write(`${lines.slice(0, 12).join('\n')}\n…\n`);
  }
} finally {
  await Promise.all([emulator.stop(), s3.stop()]);
}
