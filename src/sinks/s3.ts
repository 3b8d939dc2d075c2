import type { ListObjectsV2CommandOutput, S3Client } from '@aws-sdk/client-s3';
import { SpotifyBatchError } from '../core/errors.ts';
import type { S3Options } from '../core/options/s3.ts';
import { nonEmpty } from '../core/options.ts';
import type { EventListener } from '../core/stats.ts';
import { s3Code, s3Error, s3Status } from './s3-errors.ts';
import {
  type Condition,
  conditionHeaders,
  objectSettings,
  type S3Modules,
  type S3Object,
  S3Upload,
} from './s3-upload.ts';

export type { Condition, S3Object } from './s3-upload.ts';

/** The HTTP handler's own warnings (socket pool at capacity) would break JSON logs. */
const QUIET = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A run's access to S3: one client for all of its outputs (one connection pool, one set of
 * credentials), the bucket checked once before any fetching, and one middleware that gives each
 * output's requests to its {@link S3Upload} (the commit barrier, the abort sent once, the first
 * failed call stopping that output's pipeline).
 */
export class S3Store {
  readonly #client: S3Client;
  readonly #options: S3Options;
  readonly #modules: S3Modules;
  readonly #uploads = new Map<string, S3Upload>();
  readonly #buckets = new Map<string, Promise<void>>();

  /** The run's signal: the bucket check and every upload's parts stop at once when it fires. */
  readonly #signal: AbortSignal | undefined;
  readonly #onEvent: EventListener | undefined;
  /** AWS_PROFILE, when set: named in a credentials error. */
  readonly #profile: string | undefined;

  private constructor(
    client: S3Client,
    options: S3Options,
    modules: S3Modules,
    signal: AbortSignal | undefined,
    onEvent: EventListener | undefined,
    profile: string | undefined,
  ) {
    this.#signal = signal;
    this.#onEvent = onEvent;
    this.#profile = profile;
    this.#client = client;
    this.#options = options;
    this.#modules = modules;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Bucket?: string; Key?: string; UploadId?: string };
        const upload = this.#uploads.get(`${input.Bucket}/${input.Key}`);
        if (upload === undefined) return next(args);
        return upload.intercept(context.commandName ?? '', input, () => next(args));
      },
      { step: 'initialize', name: 'spotifyBatchCommitBarrier' },
    );
  }

  /** Creates the client, loading the AWS SDK only now (runs without S3 never pay for it). */
  static async create(
    options: S3Options,
    env: NodeJS.ProcessEnv,
    signal?: AbortSignal,
    onEvent?: EventListener,
  ): Promise<S3Store> {
    const [s3, { Upload }] = await Promise.all([
      import('@aws-sdk/client-s3'),
      import('@aws-sdk/lib-storage'),
    ]);
    const { S3Client } = s3;
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
        // The SDK sets no timeouts by default: a dead endpoint would hang the run. A socket
        // idle for 120 s fails the request (its requestTimeout would count the whole upload of
        // a part, and by default only logs, on the console, through JSON logs).
        requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000, logger: QUIET },
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
    return new S3Store(client, options, { s3, Upload }, signal, onEvent, profile);
  }

  /**
   * Opens an output: checks its bucket (once per bucket, before any fetching) and starts the
   * upload, whose final request will wait for {@link S3Upload.publish}.
   */
  async open(object: S3Object): Promise<S3Upload> {
    await this.#checkBucket(object);
    const id = `${object.bucket}/${object.key}`;
    // The plan refuses two outputs at one place; this guard keeps a mistake there from
    // silently tying one output's held request to another's verdict.
    if (this.#uploads.has(id)) throw new Error(`two outputs of one run at s3://${id}`);
    const upload = new S3Upload(
      this.#client,
      this.#modules,
      this.#options,
      object,
      this.#signal,
      () => {
        if (this.#uploads.get(id) === upload) this.#uploads.delete(id);
      },
      this.#onEvent,
    );
    this.#uploads.set(id, upload);
    return upload;
  }

  /** An object's ETag, or null when there is none. */
  async version(bucket: string, key: string): Promise<string | null> {
    const { HeadObjectCommand } = this.#modules.s3;
    try {
      return (
        (await this.#client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag ?? ''
      );
    } catch (error) {
      if (s3Status(error) === 404) return null;
      throw s3Error(error, { ...this.#where(bucket, key), doing: 'reading' });
    }
  }

  /** An object's bytes and ETag, or undefined when there is none. */
  async read(
    bucket: string,
    key: string,
  ): Promise<{ body: NodeJS.ReadableStream; version: string; modified?: Date } | undefined> {
    const { GetObjectCommand } = this.#modules.s3;
    try {
      const got = await this.#client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return {
        body: got.Body as NodeJS.ReadableStream,
        version: got.ETag ?? '',
        ...(got.LastModified === undefined ? {} : { modified: got.LastModified }),
      };
    } catch (error) {
      const code = s3Code(error);
      if (code === 'NoSuchKey' || code === 'NotFound') return undefined;
      throw s3Error(error, { ...this.#where(bucket, key), doing: 'reading' });
    }
  }

  /**
   * Every key that starts with `prefix`, in S3's order (ListObjectsV2, page after page; keys
   * ending in `/`, folder markers, left out).
   */
  async list(bucket: string, prefix: string): Promise<string[]> {
    const { ListObjectsV2Command } = this.#modules.s3;
    const keys: string[] = [];
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
          this.#signal === undefined ? {} : { abortSignal: this.#signal },
        );
      } catch (error) {
        throw s3Error(error, { ...this.#where(bucket, prefix), doing: 'listing' });
      }
      for (const { Key } of page.Contents ?? []) {
        if (Key !== undefined && !Key.endsWith('/')) keys.push(Key);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys;
  }

  /**
   * A small object written in one conditional PutObject: answers its ETag, or `false` when the
   * condition failed (412: someone else's object is there, or it changed).
   */
  async putIf(object: S3Object & { body: string; condition: Condition }): Promise<string | false> {
    const { PutObjectCommand } = this.#modules.s3;
    try {
      const put = await this.#client.send(
        new PutObjectCommand({
          Bucket: object.bucket,
          Key: object.key,
          Body: object.body,
          ContentType: object.contentType,
          ...conditionHeaders(object.condition),
        }),
      );
      return put.ETag ?? '';
    } catch (error) {
      const status = s3Status(error);
      if (status === 412 || status === 409) return false;
      throw s3Error(error, this.#where(object.bucket, object.key));
    }
  }

  /**
   * Deletes an object only while its ETag is still `etag` (a conditional DeleteObject, If-Match:
   * AWS S3 honours it since September 2025). Answers false when the object changed or is gone.
   */
  async deleteIf(bucket: string, key: string, etag: string): Promise<boolean> {
    const { DeleteObjectCommand } = this.#modules.s3;
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }));
      return true;
    } catch (error) {
      const status = s3Status(error);
      if (status === 412 || status === 404) return false;
      throw s3Error(error, { ...this.#where(bucket, key), doing: 'deleting' });
    }
  }

  /** Deletes an object if it exists (the commit invalidates the previous run's manifest). */
  async delete(bucket: string, key: string): Promise<void> {
    const { DeleteObjectCommand } = this.#modules.s3;
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      throw s3Error(error, { ...this.#where(bucket, key), doing: 'deleting' });
    }
  }

  /**
   * Proves an object could be written at `key` without writing it: the bucket check, then a
   * multipart upload created and aborted at once (no object ever appears).
   */
  async probe(object: S3Object): Promise<void> {
    await this.#checkBucket(object);
    const { CreateMultipartUploadCommand, AbortMultipartUploadCommand } = this.#modules.s3;
    const where = this.#where(object.bucket, object.key);
    let uploadId: string | undefined;
    try {
      ({ UploadId: uploadId } = await this.#client.send(
        // Created as the output would be, so a KMS key or tag the role may not use fails here.
        // Not cancelled by the run's signal: an upload S3 created whose answer was cut off
        // could not be aborted. The signal is checked once the probe is undone.
        new CreateMultipartUploadCommand(objectSettings(object, this.#options)),
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
      // The probe's upload stays (a lifecycle rule removes it): said as the data path says it.
      try {
        this.#onEvent?.({
          event: 'abort-failed',
          location: `s3://${object.bucket}/${object.key}`,
          bucket: object.bucket,
          key: object.key,
          uploadId: uploadId ?? '',
          reason: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        });
      } catch {}
      throw s3Error(error, where);
    }
    this.#signal?.throwIfAborted();
  }

  close(): void {
    this.#client.destroy();
  }

  /** What an error line names: the object, the endpoint, and the profile. */
  #where(bucket: string, key: string) {
    return { bucket, key, endpoint: this.#options.endpoint, profile: this.#profile };
  }

  #checkBucket(object: S3Object): Promise<void> {
    let check = this.#buckets.get(object.bucket);
    if (check === undefined) {
      check = (async () => {
        const { HeadBucketCommand } = this.#modules.s3;
        try {
          await this.#client.send(new HeadBucketCommand({ Bucket: object.bucket }), {
            ...(this.#signal === undefined ? {} : { abortSignal: this.#signal }),
          });
        } catch (error) {
          // 403 on HeadBucket only means no s3:ListBucket; PutObject may still be allowed.
          if (s3Status(error) !== 403) throw s3Error(error, this.#where(object.bucket, object.key));
        }
      })();
      this.#buckets.set(object.bucket, check);
    }
    return check;
  }
}
