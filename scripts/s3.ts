/**
 * A local S3-compatible server for trying the tool by hand (the tests start their own through
 * scripts/local-s3.ts): s3rver on loopback, the buckets named made, the environment that points
 * the CLI at it printed as `export` lines. Stops on Ctrl-C, removing what it stored.
 *
 *   npm run s3 -- [bucket…]          (default bucket: demo)
 *
 * Objects are read back with a plain GET, path-style (s3rver answers unsigned requests):
 * `curl -s "$AWS_ENDPOINT_URL_S3/BUCKET/KEY"`. `npm start -- --keep` (scripts/demo.ts) starts
 * this and the Spotify emulator together.
 */
import { startS3 } from './local-s3.ts';

const buckets = process.argv.slice(2).filter((a) => a !== '--');
const s3 = await startS3();
for (const bucket of buckets.length > 0 ? buckets : ['demo']) await s3.createBucket(bucket);
for (const [name, value] of Object.entries(s3.env)) console.log(`export ${name}=${value}`);
const first = buckets[0] ?? 'demo';
console.error(
  `local S3 at ${s3.endpoint}, bucket(s) ${(buckets.length > 0 ? buckets : ['demo']).join(', ')}; paste the lines above into another shell, then e.g. npx spotify-batch new-releases --out s3://${first}/albums.csv, and read it back with curl -s "$AWS_ENDPOINT_URL_S3/${first}/albums.csv". Ctrl-C stops it and removes what it stored.`,
);
const stop = async () => {
  await s3.stop();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
