import { mkdtempSync } from 'node:fs';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import S3rver from 's3rver';

const dir = mkdtempSync('/tmp/s3rv-');
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir });
const { port } = await server.run();
console.log('port', port);
const client = new S3Client({
  endpoint: `http://127.0.0.1:${port}`,
  forcePathStyle: true,
  region: 'us-east-1',
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
await client.send(new CreateBucketCommand({ Bucket: 'bucket1' }));
const big = Buffer.alloc(12 * 1024 * 1024, 'a');
const up = new Upload({
  client,
  params: {
    Bucket: 'bucket1',
    Key: 'k/x.csv',
    Body: Readable.from([big.subarray(0, 6e6), big.subarray(6e6)]),
    ContentType: 'text/csv',
  },
  partSize: 5 * 1024 * 1024,
});
console.log(await up.done());
const got = await client.send(new GetObjectCommand({ Bucket: 'bucket1', Key: 'k/x.csv' }));
console.log((await got.Body.transformToByteArray()).length, got.ContentType);
console.log(await client.send(new ListMultipartUploadsCommand({ Bucket: 'bucket1' })));
await server.close();
