import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export interface LocalS3 {
  endpoint: string;
  client: S3Client;
  /** Environment for the CLI: endpoint and static credentials s3rver accepts. */
  env: NodeJS.ProcessEnv;
  /** Requests S3 received, in order: `METHOD query-kind` (e.g. `PUT part`, `POST complete`). */
  requests: string[];
  /** Holds every UploadPart until the returned function is called (an S3 that stops taking data). */
  holdParts(): () => void;
  /** UploadPart requests being held right now. */
  heldParts: number;
  /** Multipart uploads created and neither completed nor aborted (what ListMultipartUploads would list). */
  openUploads(bucket: string): Promise<string[]>;
  getObject(
    bucket: string,
    key: string,
  ): Promise<{ body: Buffer; contentType: string | undefined } | undefined>;
  listKeys(bucket: string): Promise<string[]>;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  status: number;
  body: unknown;
  set(name: string, value: string): void;
}

/**
 * s3rver on loopback with the two calls it lacks and this project's tests need:
 * AbortMultipartUpload and ListMultipartUploads, implemented on s3rver's own upload folders
 * (`<dir>/<bucket>/._S3rver_uploads/<uploadId>`, removed by s3rver when an upload completes).
 */
export async function startS3(): Promise<LocalS3> {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-s3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir });
  const uploadsDir = (bucket: string) => join(dir, bucket, '._S3rver_uploads');
  const requests: string[] = [];
  let hold: Promise<void> | undefined;
  const local = {
    heldParts: 0,
    holdParts() {
      let release = () => {};
      hold = new Promise<void>((resolve) => {
        release = () => {
          hold = undefined;
          resolve();
        };
      });
      return release;
    },
  } as LocalS3;
  const middleware = async (ctx: KoaContext, next: () => Promise<void>) => {
    const kind =
      'uploadId' in ctx.query && 'partNumber' in ctx.query
        ? 'part'
        : 'uploadId' in ctx.query
          ? ctx.method === 'POST'
            ? 'complete'
            : 'upload'
          : 'uploads' in ctx.query
            ? 'uploads'
            : 'object';
    requests.push(`${ctx.method} ${kind}`);
    const bucket = ctx.path.split('/')[1] ?? '';
    if (ctx.method === 'DELETE' && kind === 'upload') {
      await rm(join(uploadsDir(bucket), String(ctx.query.uploadId)), {
        recursive: true,
        force: true,
      });
      ctx.status = 204;
      return;
    }
    if (
      ctx.method === 'GET' &&
      kind === 'uploads' &&
      ctx.path.split('/').filter(Boolean).length === 1
    ) {
      const ids = await readdir(uploadsDir(bucket)).catch(() => [] as string[]);
      ctx.set('content-type', 'application/xml');
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${bucket}</Bucket>${ids
        .map((id) => `<Upload><UploadId>${id}</UploadId></Upload>`)
        .join('')}</ListMultipartUploadsResult>`;
      return;
    }
    if (kind === 'part' && hold) {
      local.heldParts++;
      await hold;
      local.heldParts--;
    }
    await next();
  };
  (server as unknown as { middleware: unknown[] }).middleware.unshift(middleware);
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const client = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return Object.assign(local, {
    endpoint,
    client,
    requests,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    async openUploads(bucket: string) {
      return readdir(uploadsDir(bucket)).catch(() => []);
    },
    async getObject(bucket: string, key: string) {
      try {
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      } catch {
        return undefined;
      }
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return {
        body: Buffer.from(
          await (
            got.Body as { transformToByteArray(): Promise<Uint8Array> }
          ).transformToByteArray(),
        ),
        contentType: got.ContentType,
      };
    },
    async listKeys(bucket: string) {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      return (listed.Contents ?? []).map((o) => o.Key ?? '');
    },
    async createBucket(name: string) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async stop() {
      client.destroy();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  });
}
