import { PassThrough } from 'node:stream';
import type { CompleteMultipartUploadCommandOutput, S3Client } from '@aws-sdk/client-s3';
import { SpotifyBatchError } from '../core/errors.ts';
import type { S3Options } from '../core/options.ts';
import type { Sink, SinkResult } from '../core/sink.ts';

export interface S3SinkOptions extends S3Options {
  bucket: string;
  key: string;
  contentType: string;
  env?: NodeJS.ProcessEnv;
}

/** How long an abort waits for lib-storage to settle before aborting the upload itself. */
const ABORT_GRACE_MS = 10_000;

/**
 * Streams into S3 with lib-storage's `Upload`: parts of `partSize` bytes, `queueSize` of them in
 * flight, so memory stays near partSize × (queueSize + 1) whatever the size. Outputs smaller
 * than one part become one PutObject. The object appears only when the upload completes.
 *
 * Failure either way ends both sides: an S3 error destroys the body stream (so the pipeline
 * stops fetching at once, instead of lib-storage draining the whole source first), and a
 * pipeline error destroys the body, which makes lib-storage abort the multipart upload. As a
 * last resort `abort()` sends AbortMultipartUpload itself, so no parts are left behind.
 */
export class S3Sink implements Sink {
  readonly writable: PassThrough;
  readonly #client: S3Client;
  readonly #options: S3SinkOptions;
  readonly #done: Promise<CompleteMultipartUploadCommandOutput>;
  #uploadId: string | undefined;
  #parts = 0;
  #completed = false;

  private constructor(
    client: S3Client,
    options: S3SinkOptions,
    Upload: typeof import('@aws-sdk/lib-storage').Upload,
  ) {
    this.#client = client;
    this.#options = options;
    this.writable = new PassThrough({ highWaterMark: 64 * 1024 });
    this.#watch();
    const { bucket, key, contentType, sse, sseKmsKeyId, storageClass, tags } = options;
    const tagging = new URLSearchParams(tags).toString();
    const upload = new Upload({
      client,
      partSize: options.partSize,
      queueSize: options.queueSize,
      leavePartsOnError: false,
      params: {
        Bucket: bucket,
        Key: key,
        Body: this.writable,
        ContentType: contentType,
        ...(sse === undefined ? {} : { ServerSideEncryption: sse }),
        ...(sseKmsKeyId === undefined ? {} : { SSEKMSKeyId: sseKmsKeyId }),
        ...(storageClass === undefined ? {} : { StorageClass: storageClass as 'STANDARD' }),
        ...(tagging === '' ? {} : { Tagging: tagging }),
      },
    });
    this.#done = upload.done();
    this.#done.then(
      () => {
        this.#completed = true;
      },
      (error: unknown) => this.writable.destroy(this.#error(error)),
    );
  }

  /** Creates the client (loading the AWS SDK only now) and checks the bucket before any fetching. */
  static async open(options: S3SinkOptions): Promise<S3Sink> {
    const [{ S3Client, HeadBucketCommand }, { Upload }] = await Promise.all([
      import('@aws-sdk/client-s3'),
      import('@aws-sdk/lib-storage'),
    ]);
    const env = options.env ?? process.env;
    const custom = options.endpoint !== undefined;
    // S3-compatible stores (R2, MinIO derivatives, OVH) reject the SDK's default CRC32 trailers.
    const checksum = (name: string) =>
      (env[name] as 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' | undefined) ??
      (custom ? 'WHEN_REQUIRED' : undefined);
    const requestChecksumCalculation = checksum('AWS_REQUEST_CHECKSUM_CALCULATION');
    const responseChecksumValidation = checksum('AWS_RESPONSE_CHECKSUM_VALIDATION');
    const client = new S3Client({
      ...(options.region === undefined ? {} : { region: options.region }),
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      forcePathStyle: options.forcePathStyle,
      ...(requestChecksumCalculation ? { requestChecksumCalculation } : {}),
      ...(responseChecksumValidation ? { responseChecksumValidation } : {}),
      // The SDK sets no timeouts by default: a dead endpoint would hang the run.
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
      maxAttempts: 5,
    });
    await resolveRegion(client, custom);
    try {
      await client.send(new HeadBucketCommand({ Bucket: options.bucket }));
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata
        ?.httpStatusCode;
      // 403 on HeadBucket only means no s3:ListBucket; PutObject may still be allowed.
      if (status !== 403) {
        client.destroy();
        throw s3Error(error, options);
      }
    }
    return new S3Sink(client, options, Upload);
  }

  async commit(): Promise<SinkResult> {
    try {
      const result = await this.#done;
      return {
        location: `s3://${this.#options.bucket}/${this.#options.key}`,
        ...(result.ETag === undefined ? {} : { etag: result.ETag }),
        parts: Math.max(1, this.#parts),
      };
    } catch (error) {
      await this.abort(error);
      throw this.#error(error);
    }
  }

  /** Deletes the completed object (a later part of the same run failed). */
  async remove(): Promise<void> {
    const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
    try {
      await this.#client.send(
        new DeleteObjectCommand({ Bucket: this.#options.bucket, Key: this.#options.key }),
      );
    } catch (error) {
      throw this.#error(error);
    }
  }

  async release(): Promise<void> {
    this.#client.destroy();
  }

  async abort(reason: unknown): Promise<void> {
    this.writable.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    const settled = this.#done.then(
      () => true,
      () => false,
    );
    const grace = new Promise<'timeout'>((resolve) =>
      setTimeout(resolve, ABORT_GRACE_MS, 'timeout').unref(),
    );
    const outcome = await Promise.race([settled, grace]);
    if (outcome === true || this.#uploadId === undefined) {
      this.#client.destroy();
      return;
    }
    const { AbortMultipartUploadCommand } = await import('@aws-sdk/client-s3');
    await this.#client
      .send(
        new AbortMultipartUploadCommand({
          Bucket: this.#options.bucket,
          Key: this.#options.key,
          UploadId: this.#uploadId,
        }),
        { abortSignal: AbortSignal.timeout(ABORT_GRACE_MS) },
      )
      .catch(() => {}); // already aborted by lib-storage (NoSuchUpload), or S3 is gone
    this.#client.destroy();
  }

  /** Learns the upload id and part count, and stops the pipeline at the first failed S3 call. */
  #watch(): void {
    this.#client.middlewareStack.add(
      (next, context) => async (args) => {
        try {
          const result = await next(args);
          if (context.commandName === 'CreateMultipartUploadCommand') {
            this.#uploadId = (result.output as { UploadId?: string }).UploadId;
          } else if (context.commandName === 'UploadPartCommand') {
            this.#parts++;
          }
          return result;
        } catch (error) {
          if (!this.#completed && context.commandName !== 'AbortMultipartUploadCommand') {
            this.writable.destroy(this.#error(error));
          }
          throw error;
        }
      },
      { step: 'initialize', name: 'spotifyBatchFailFast' },
    );
  }

  #error(error: unknown): SpotifyBatchError {
    return error instanceof SpotifyBatchError ? error : s3Error(error, this.#options);
  }
}

async function resolveRegion(client: S3Client, custom: boolean): Promise<void> {
  try {
    await client.config.region();
  } catch {
    if (custom) {
      // S3-compatible servers mostly ignore the region; the signature still needs one.
      client.config.region = async () => 'us-east-1';
      return;
    }
    throw new SpotifyBatchError(
      'ERR_CONFIG',
      'no AWS region for S3: set AWS_REGION, a profile region, or --s3-region',
    );
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
