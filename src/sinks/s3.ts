import { PassThrough } from 'node:stream';
import type { CompleteMultipartUploadCommandOutput, S3Client } from '@aws-sdk/client-s3';
import type { Upload } from '@aws-sdk/lib-storage';
import { SpotifyBatchError } from '../core/errors.ts';
import type { S3Options } from '../core/options.ts';
import type { SinkResult, StagedSink } from '../core/sink.ts';

export interface S3Object {
  bucket: string;
  key: string;
  contentType: string;
  /**
   * A conditional write (S3's If-Match / If-None-Match on the final request): publish only if
   * the object is still the version read earlier (`ifMatch`: its ETag), or still absent.
   */
  condition?: Condition | undefined;
}

/** What a conditional write expects to find at its key. */
export type Condition = { ifMatch: string } | { ifNoneMatch: '*' };

/** The requests that make an object appear: these are held until the run publishes. */
const FINAL_COMMANDS = new Set(['CompleteMultipartUploadCommand', 'PutObjectCommand']);

const nonEmpty = (...values: (string | undefined)[]): string | undefined =>
  values.find((v) => v !== undefined && v !== '');

/**
 * A run's access to S3: one client for all of its outputs (one connection pool, one set of
 * credentials), the bucket checked once before any fetching, and one middleware that gives each
 * output's requests to its {@link S3Sink}: the first failed call stops that output's pipeline
 * at once, and the final request of every upload is held at the commit barrier.
 */
export class S3Store {
  readonly #client: S3Client;
  readonly #options: S3Options;
  readonly #Upload: typeof Upload;
  readonly #sinks = new Map<string, S3Sink>();
  readonly #buckets = new Map<string, Promise<void>>();

  private constructor(client: S3Client, options: S3Options, UploadClass: typeof Upload) {
    this.#client = client;
    this.#options = options;
    this.#Upload = UploadClass;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Bucket?: string; Key?: string };
        const sink = this.#sinks.get(`${input.Bucket}/${input.Key}`);
        const command = context.commandName ?? '';
        if (sink === undefined) return next(args);
        if (FINAL_COMMANDS.has(command)) await sink.hold();
        try {
          return await next(args);
        } catch (error) {
          if (command !== 'AbortMultipartUploadCommand') sink.fail(error);
          throw error;
        }
      },
      { step: 'initialize', name: 'spotifyBatchCommitBarrier' },
    );
  }

  /** Creates the client, loading the AWS SDK only now (runs without S3 never pay for it). */
  static async create(options: S3Options, env: NodeJS.ProcessEnv): Promise<S3Store> {
    const [{ S3Client }, { Upload: UploadClass }] = await Promise.all([
      import('@aws-sdk/client-s3'),
      import('@aws-sdk/lib-storage'),
    ]);
    const custom = options.endpoint !== undefined;
    // S3-compatible stores (R2, MinIO derivatives, OVH) reject the SDK's default CRC32 trailers.
    const checksum = (name: string) =>
      (env[name] as 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' | undefined) ??
      (custom ? 'WHEN_REQUIRED' : undefined);
    const requestChecksumCalculation = checksum('AWS_REQUEST_CHECKSUM_CALCULATION');
    const responseChecksumValidation = checksum('AWS_RESPONSE_CHECKSUM_VALIDATION');
    // The region is settled before the client is built (the SDK ignores later changes): the
    // flag, the environment given to the run (which holds --env-file values), then the SDK's own
    // chain (profiles), and us-east-1 for custom endpoints, which mostly ignore it.
    let region = nonEmpty(options.region, env.AWS_REGION, env.AWS_DEFAULT_REGION);
    const accessKeyId = nonEmpty(env.AWS_ACCESS_KEY_ID);
    const secretAccessKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
    const sessionToken = nonEmpty(env.AWS_SESSION_TOKEN);
    const profile = nonEmpty(env.AWS_PROFILE);
    const make = () =>
      new S3Client({
        ...(region === undefined ? {} : { region }),
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        ...(profile === undefined ? {} : { profile }),
        ...(accessKeyId && secretAccessKey
          ? {
              credentials: {
                accessKeyId,
                secretAccessKey,
                ...(sessionToken === undefined ? {} : { sessionToken }),
              },
            }
          : {}),
        forcePathStyle: options.forcePathStyle,
        ...(requestChecksumCalculation ? { requestChecksumCalculation } : {}),
        ...(responseChecksumValidation ? { responseChecksumValidation } : {}),
        // The SDK sets no timeouts by default: a dead endpoint would hang the run.
        requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
        maxAttempts: 5,
      });
    let client = make();
    if (region === undefined) {
      try {
        await client.config.region();
      } catch {
        client.destroy();
        if (!custom) {
          throw new SpotifyBatchError(
            'ERR_CONFIG',
            'no AWS region for S3: set AWS_REGION, a profile region, or --s3-region',
          );
        }
        region = 'us-east-1';
        client = make();
      }
    }
    return new S3Store(client, options, UploadClass);
  }

  /**
   * Opens an output: checks its bucket (once per bucket, before any fetching) and starts the
   * upload, whose final request will wait for {@link S3Sink.publish}.
   */
  async open(object: S3Object): Promise<S3Sink> {
    await this.#checkBucket(object);
    const id = `${object.bucket}/${object.key}`;
    // The plan refuses two outputs at one place; this guard keeps a mistake there from
    // silently tying one output's held request to another's verdict.
    if (this.#sinks.has(id)) throw new Error(`two outputs of one run at s3://${id}`);
    const sink = new S3Sink(this.#client, this.#Upload, this.#options, object, () => {
      if (this.#sinks.get(id) === sink) this.#sinks.delete(id);
    });
    this.#sinks.set(id, sink);
    return sink;
  }

  /** An object's ETag, or null when there is none. */
  async version(bucket: string, key: string): Promise<string | null> {
    const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
    try {
      return (
        (await this.#client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag ?? ''
      );
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata
        ?.httpStatusCode;
      if (status === 404) return null;
      throw s3Error(error, { bucket, key, endpoint: this.#options.endpoint });
    }
  }

  /** An object's bytes and ETag, or undefined when there is none. */
  async read(
    bucket: string,
    key: string,
  ): Promise<{ body: NodeJS.ReadableStream; version: string; modified?: Date } | undefined> {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    try {
      const got = await this.#client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return {
        body: got.Body as NodeJS.ReadableStream,
        version: got.ETag ?? '',
        ...(got.LastModified === undefined ? {} : { modified: got.LastModified }),
      };
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
      throw s3Error(error, { bucket, key, endpoint: this.#options.endpoint });
    }
  }

  /**
   * A small object written in one conditional PutObject: answers its ETag, or `false` when the
   * condition failed (412: someone else's object is there, or it changed).
   */
  async putIf(object: S3Object & { body: string; condition: Condition }): Promise<string | false> {
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    const c = object.condition;
    try {
      const put = await this.#client.send(
        new PutObjectCommand({
          Bucket: object.bucket,
          Key: object.key,
          Body: object.body,
          ContentType: object.contentType,
          ...('ifMatch' in c ? { IfMatch: c.ifMatch } : { IfNoneMatch: c.ifNoneMatch }),
        }),
      );
      return put.ETag ?? '';
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata
        ?.httpStatusCode;
      if (status === 412 || status === 409) return false;
      throw s3Error(error, { ...object, endpoint: this.#options.endpoint });
    }
  }

  /** Deletes an object if it exists (the commit invalidates the previous run's manifest). */
  async delete(bucket: string, key: string): Promise<void> {
    const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      throw s3Error(error, { bucket, key, endpoint: this.#options.endpoint });
    }
  }

  /**
   * Proves an object could be written at `key` without writing it: the bucket check, then a
   * multipart upload created and aborted at once (no object ever appears).
   */
  async probe(object: S3Object): Promise<void> {
    await this.#checkBucket(object);
    const { CreateMultipartUploadCommand, AbortMultipartUploadCommand } = await import(
      '@aws-sdk/client-s3'
    );
    const where = { ...object, endpoint: this.#options.endpoint };
    let uploadId: string | undefined;
    try {
      ({ UploadId: uploadId } = await this.#client.send(
        new CreateMultipartUploadCommand({
          Bucket: object.bucket,
          Key: object.key,
          ContentType: object.contentType,
        }),
      ));
    } catch (error) {
      throw s3Error(error, where);
    }
    try {
      await this.#client.send(
        new AbortMultipartUploadCommand({
          Bucket: object.bucket,
          Key: object.key,
          UploadId: uploadId,
        }),
      );
    } catch (error) {
      throw s3Error(error, where);
    }
  }

  close(): void {
    this.#client.destroy();
  }

  #checkBucket(object: S3Object): Promise<void> {
    let check = this.#buckets.get(object.bucket);
    if (check === undefined) {
      check = (async () => {
        const { HeadBucketCommand } = await import('@aws-sdk/client-s3');
        try {
          await this.#client.send(new HeadBucketCommand({ Bucket: object.bucket }));
        } catch (error) {
          const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata
            ?.httpStatusCode;
          // 403 on HeadBucket only means no s3:ListBucket; PutObject may still be allowed.
          if (status !== 403) throw s3Error(error, { ...object, endpoint: this.#options.endpoint });
        }
      })();
      this.#buckets.set(object.bucket, check);
    }
    return check;
  }
}

/**
 * Streams one output into S3 with lib-storage's `Upload`: parts of `partSize` bytes, `queueSize`
 * of them in flight, so memory stays near partSize × (queueSize + 1) whatever the size. Outputs
 * smaller than one part become one PutObject.
 *
 * Staged means the upload reached its final request (CompleteMultipartUpload, or the lone
 * PutObject): {@link S3Store}'s middleware holds it there until the run publishes (the request
 * goes out) or discards (it fails before being sent, and lib-storage aborts the multipart
 * upload). A held PutObject keeps its body — less than one part — in memory until then.
 *
 * Failure either way ends both sides: a failed S3 call destroys the body stream, so the pipeline
 * stops fetching at once (lib-storage would otherwise drain the whole source first); a pipeline
 * failure destroys the body, which makes lib-storage send AbortMultipartUpload — once, after the
 * parts in flight settled — and only then settle `done()`, which `discard()` waits for.
 */
export class S3Sink implements StagedSink {
  readonly location: string;
  readonly writable: PassThrough;
  readonly staged: Promise<void>;
  readonly #object: S3Object;
  readonly #endpoint: string | undefined;
  readonly #done: Promise<CompleteMultipartUploadCommandOutput>;
  readonly #unregister: () => void;
  readonly #client: S3Client;
  readonly #upload: Upload;
  #onStaged = () => {};
  #release = () => {};
  #refuse: (reason: Error) => void = () => {};
  readonly #verdict: Promise<void>;
  #parts = 0;
  #published = false;
  /** publish() let the final request go. */
  #released = false;

  constructor(
    client: S3Client,
    UploadClass: typeof Upload,
    options: S3Options,
    object: S3Object,
    unregister: () => void,
  ) {
    this.#object = object;
    this.#client = client;
    this.#endpoint = options.endpoint;
    this.#unregister = unregister;
    this.location = `s3://${object.bucket}/${object.key}`;
    this.writable = new PassThrough({ highWaterMark: 64 * 1024 });
    this.#verdict = new Promise<void>((resolve, reject) => {
      this.#release = resolve;
      this.#refuse = reject;
    });
    this.#verdict.catch(() => {});
    const { sse, sseKmsKeyId, storageClass, tags } = options;
    const tagging = new URLSearchParams(tags).toString();
    const upload = new UploadClass({
      client,
      partSize: options.partSize,
      queueSize: options.queueSize,
      leavePartsOnError: false,
      params: {
        Bucket: object.bucket,
        Key: object.key,
        Body: this.writable,
        ContentType: object.contentType,
        ...(sse === undefined ? {} : { ServerSideEncryption: sse }),
        ...(sseKmsKeyId === undefined ? {} : { SSEKMSKeyId: sseKmsKeyId }),
        ...(storageClass === undefined ? {} : { StorageClass: storageClass as 'STANDARD' }),
        ...(tagging === '' ? {} : { Tagging: tagging }),
        ...(object.condition === undefined
          ? {}
          : 'ifMatch' in object.condition
            ? { IfMatch: object.condition.ifMatch }
            : { IfNoneMatch: object.condition.ifNoneMatch }),
      },
    });
    this.#upload = upload;
    upload.on('httpUploadProgress', (progress) => {
      this.#parts = Math.max(this.#parts, progress.part ?? 0);
    });
    this.#done = upload.done();
    this.staged = new Promise<void>((resolve, reject) => {
      this.#onStaged = resolve;
      this.#done.catch((error: unknown) => reject(this.#error(error)));
    });
    this.staged.catch(() => {});
    this.#done.catch((error: unknown) => this.fail(error));
  }

  /** The middleware's barrier: the final request arrived (staged); wait for the run's verdict. */
  hold(): Promise<void> {
    this.#onStaged();
    return this.#verdict;
  }

  /** A call for this output failed: stop its pipeline now. */
  fail(error: unknown): void {
    if (!this.writable.destroyed) this.writable.destroy(this.#error(error));
  }

  async publish(): Promise<SinkResult> {
    await this.staged;
    this.#released = true;
    this.#release();
    let result: CompleteMultipartUploadCommandOutput;
    try {
      result = await this.#done;
    } catch (error) {
      throw this.#error(error);
    } finally {
      this.#unregister();
    }
    this.#published = true;
    return {
      location: this.location,
      ...(result.ETag === undefined ? {} : { etag: result.ETag, version: result.ETag }),
      parts: Math.max(1, this.#parts),
    };
  }

  async discard(reason: unknown): Promise<void> {
    if (this.#published) return;
    const error = reason instanceof Error ? reason : new Error(String(reason));
    this.#refuse(error);
    if (!this.writable.destroyed) this.writable.destroy(error);
    // lib-storage settles done() after its AbortMultipartUpload went out (or was not needed).
    await this.#done.catch(() => {});
    this.#unregister();
  }

  async abandon(): Promise<void> {
    const uploadId = this.#upload.uploadId;
    // A Complete already sent is let be: aborting under it would make a part-way publish.
    if (this.#released || uploadId === undefined) return;
    const { AbortMultipartUploadCommand } = await import('@aws-sdk/client-s3');
    await this.#client
      .send(
        new AbortMultipartUploadCommand({
          Bucket: this.#object.bucket,
          Key: this.#object.key,
          UploadId: uploadId,
        }),
      )
      .catch(() => {}); // lib-storage's own abort may have come first (NoSuchUpload)
  }

  #error(error: unknown): SpotifyBatchError {
    return error instanceof SpotifyBatchError
      ? error
      : s3Error(error, { ...this.#object, endpoint: this.#endpoint });
  }
}

/** One clear line for the S3 failures users actually meet, naming bucket and key. */
export function s3Error(
  error: unknown,
  where: { bucket: string; key: string; endpoint?: string | undefined },
): SpotifyBatchError {
  const err = error as {
    name?: string;
    Code?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const name = err.Code ?? err.name ?? '';
  const status = err.$metadata?.httpStatusCode;
  const url = `s3://${where.bucket}/${where.key}`;
  const context = {
    bucket: where.bucket,
    key: where.key,
    ...(status === undefined ? {} : { status }),
  };
  const make = (code: 'ERR_S3' | 'ERR_CONFIG', message: string) =>
    new SpotifyBatchError(code, message, { cause: error, context });
  if (name === 'NoSuchBucket' || (name === 'NotFound' && status === 404)) {
    return make('ERR_S3', `S3 bucket ${where.bucket} does not exist (writing ${url})`);
  }
  if (
    name === 'CredentialsProviderError' ||
    /could not load credentials/i.test(err.message ?? '')
  ) {
    return make(
      'ERR_CONFIG',
      `no AWS credentials found for ${url}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role`,
    );
  }
  if (
    name === 'InvalidAccessKeyId' ||
    name === 'SignatureDoesNotMatch' ||
    name === 'ExpiredToken' ||
    name === 'InvalidToken'
  ) {
    return make('ERR_S3', `S3 rejected the AWS credentials (${name}) writing ${url}`);
  }
  if (name === 'AccessDenied' || name === 'Forbidden' || status === 403) {
    return make(
      'ERR_S3',
      `access denied writing ${url}: the credentials need s3:PutObject and s3:AbortMultipartUpload on it`,
    );
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
    return make(
      'ERR_S3',
      `S3 bucket ${where.bucket} is in another region: set AWS_REGION or --s3-region (writing ${url})`,
    );
  }
  const code = err.code ?? '';
  if (
    /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET/.test(code) ||
    name === 'TimeoutError'
  ) {
    const endpoint = where.endpoint ?? 'the S3 endpoint';
    return make('ERR_S3', `cannot reach ${endpoint} writing ${url}: ${err.message ?? code}`);
  }
  return make(
    'ERR_S3',
    `S3 error writing ${url}: ${name ? `${name}: ` : ''}${err.message ?? String(error)}`,
  );
}
