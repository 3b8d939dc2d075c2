import { Transform } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Upload } from '@aws-sdk/lib-storage';
import { SpotifyBatchError } from '../core/errors.ts';
import type { S3Options } from '../core/options/s3.ts';
import type { SinkResult, StagedSink } from '../core/sink.ts';
import type { EventListener } from '../core/stats.ts';
import { s3Code, s3Error } from './s3-errors.ts';

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

/** A condition as the request headers that carry it (PutObject, CompleteMultipartUpload). */
export function conditionHeaders(
  condition: Condition | undefined,
): { IfMatch: string } | { IfNoneMatch: string } | Record<string, never> {
  if (condition === undefined) return {};
  return 'ifMatch' in condition
    ? { IfMatch: condition.ifMatch }
    : { IfNoneMatch: condition.ifNoneMatch };
}

/** What the upload needs from the AWS SDK, loaded once by the store. */
export interface S3Modules {
  s3: typeof import('@aws-sdk/client-s3');
  Upload: typeof Upload;
}

/** The requests that make an object appear: these are held until the run publishes. */
const FINAL_COMMANDS = new Set(['CompleteMultipartUploadCommand', 'PutObjectCommand']);

/** What `Upload` sends besides the abort: a failure of any of these fails the upload. */
const UPLOAD_COMMANDS = new Set([
  ...FINAL_COMMANDS,
  'CreateMultipartUploadCommand',
  'UploadPartCommand',
]);

/** How long a failed or discarded upload waits for its CreateMultipartUpload answer. */
const CREATE_GRACE_MS = 2_000;

/** S3's most parts in one multipart upload. */
const MAX_PARTS = 10_000;

/**
 * One output streamed into S3 by lib-storage's `Upload`, held at the commit barrier.
 *
 * The writable is the upload's Body: the chunks written (≥ 64 KiB, unpooled, from the
 * coalescing stage) go to `Upload` as they are, and it copies them once per part
 * (`Buffer.concat` of the chunks that make the part). `queueSize` parts are in flight while the
 * next one gathers; when all are, `Upload` stops reading and the writable's buffer fills, which
 * stops the pipeline (backpressure). An output of one part (or none) is one PutObject.
 *
 * Staged means the upload reached its final request (CompleteMultipartUpload, or the lone
 * PutObject): the store's middleware hands it to {@link intercept}, which holds it until the run
 * publishes (it goes out) or discards (it fails before being sent, and `Upload` aborts).
 *
 * Failure either way ends both sides: a failed S3 call destroys the writable, so the pipeline
 * stops fetching at once; a pipeline failure or a discard destroys the writable too, which fails
 * `Upload`'s read of its Body, and `Upload` sends AbortMultipartUpload once the parts in flight
 * settled. `Upload.abort()` is not used for that: it rejects `done()` at once and leaves the
 * requests in flight running, and it sends them without a signal, so a part S3 never answers
 * would hold the abort; {@link intercept} instead fails the parts in flight when this upload is
 * cancelled (the run's signal, a failure, a discard).
 */
export class S3Upload implements StagedSink {
  readonly location: string;
  readonly writable: Transform;
  readonly staged: Promise<void>;
  readonly #object: S3Object;
  readonly #endpoint: string | undefined;
  readonly #client: S3Client;
  readonly #s3: S3Modules['s3'];
  readonly #upload: Upload;
  readonly #onEvent: EventListener | undefined;
  readonly #unregister: () => void;
  /** The whole upload: the final request's answer, or the first failure once `Upload` gave up. */
  readonly #done: Promise<{ ETag?: string | undefined }>;
  /** The run's verdict on the held final request: released by publish, refused by discard. */
  readonly #verdict: Promise<void>;
  #release = () => {};
  #refuse: (reason: Error) => void = () => {};
  #onStaged = () => {};
  /** publish() let the final request go. */
  #released = false;
  #published = false;
  /** The first failure: what the run reports, whatever `Upload` rethrows after its abort. */
  #failure: SpotifyBatchError | undefined;
  /** The highest part number `Upload` reported. */
  #parts = 0;
  /** Fails the requests in flight: on a failure, a discard, or the run's signal. */
  readonly #cancel = new AbortController();
  readonly #cancelled: AbortSignal;
  /** AbortMultipartUpload, sent once whoever asks first (`Upload`, a second signal). */
  #aborting: Promise<unknown> | undefined;

  constructor(
    client: S3Client,
    modules: S3Modules,
    options: S3Options,
    object: S3Object,
    signal: AbortSignal | undefined,
    unregister: () => void,
    onEvent?: EventListener,
  ) {
    this.#client = client;
    this.#s3 = modules.s3;
    this.#object = object;
    this.#endpoint = options.endpoint;
    this.#unregister = unregister;
    this.#onEvent = onEvent;
    this.#cancelled =
      signal === undefined ? this.#cancel.signal : AbortSignal.any([signal, this.#cancel.signal]);
    this.location = `s3://${object.bucket}/${object.key}`;
    this.#verdict = new Promise<void>((resolve, reject) => {
      this.#release = resolve;
      this.#refuse = reject;
    });
    this.#verdict.catch(() => {});

    const { partSize, queueSize } = options;
    const limit = partSize * MAX_PARTS;
    let bytes = 0;
    // Counts what passes, copies nothing: S3's part limit is said in our words, before
    // Upload would send part 10,001 (it checks after).
    this.writable = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        bytes += chunk.length;
        if (bytes > limit) callback(this.#tooLarge(partSize));
        else callback(null, chunk);
      },
      destroy: (error, callback) => {
        // After a normal end (autoDestroy) the final request owns the outcome.
        if (error !== null) this.#fail(error);
        else if (!this.writable.writableFinished) {
          this.#fail(new Error(`${this.location}: closed before its end`));
        }
        callback(error);
      },
    });
    // A failure surfaces through `staged` and `publish()`; outputs written outside a pipeline
    // (rejects, raw, the report) have no other listener, and an unheard 'error' would crash.
    this.writable.on('error', () => {});

    this.#upload = new modules.Upload({
      client,
      partSize,
      queueSize,
      params: {
        ...objectSettings(object, options),
        ...conditionHeaders(object.condition),
        Body: this.writable,
      },
    });
    this.#upload.on('httpUploadProgress', ({ part }) => {
      if (part !== undefined && part > this.#parts) this.#parts = part;
    });
    this.#done = this.#upload.done().catch((error: unknown) => {
      this.#fail(error);
      throw this.#failure;
    });
    this.#done.catch(() => {});
    this.staged = new Promise<void>((resolve, reject) => {
      this.#onStaged = resolve;
      this.#done.catch((error: unknown) => reject(this.#error(error)));
    });
    this.staged.catch(() => {});
  }

  /**
   * Every request for this output's key, from the store's middleware (above the SDK's
   * retries): the final request waits for the run's verdict, parts fail at once when the upload is
   * cancelled, the abort goes out once, and any other failure stops the pipeline.
   */
  async intercept<T>(
    command: string,
    input: { UploadId?: string | undefined },
    send: () => Promise<T>,
  ): Promise<T> {
    if (command === 'AbortMultipartUploadCommand') return this.#abortOnce(input.UploadId, send);
    if (!UPLOAD_COMMANDS.has(command)) return send();
    if (FINAL_COMMANDS.has(command)) {
      this.#onStaged();
      await this.#verdict;
    }
    try {
      if (command === 'UploadPartCommand') return await unlessCancelled(send(), this.#cancelled);
      if (command === 'CreateMultipartUploadCommand') return await this.#create(send);
      return await send();
    } catch (error) {
      this.#fail(error);
      throw error;
    }
  }

  async publish(): Promise<SinkResult> {
    await this.staged;
    this.#released = true;
    this.#release();
    let result: { ETag?: string | undefined };
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
    this.#fail(error);
    // Settles once `Upload` sent its abort (or had none to send).
    await this.#done.catch(() => {});
    this.#unregister();
  }

  async abandon(): Promise<void> {
    const uploadId = this.#upload.uploadId;
    // A Complete already sent is let be: aborting under it would make a part-way publish.
    if (this.#released || uploadId === undefined) return;
    const { bucket: Bucket, key: Key } = this.#object;
    await this.#client
      .send(new this.#s3.AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }))
      .catch(() => {});
  }

  /** The upload failed or was discarded: stop the pipeline and the parts in flight. */
  #fail(error: unknown): void {
    // In our words at once: the pipeline rejects with what the writable was destroyed with.
    this.#failure ??= this.#error(error);
    this.#cancel.abort(this.#failure);
    if (!this.writable.destroyed) this.writable.destroy(this.#failure);
  }

  /**
   * CreateMultipartUpload is not cut short when the upload is cancelled (S3 may have made the
   * upload already): it gets a grace, then `Upload` is told it failed, and the upload is aborted
   * whenever the answer lands.
   */
  async #create<T>(send: () => Promise<T>): Promise<T> {
    const sent = send();
    try {
      return await unlessCancelled(sent, this.#cancelled, CREATE_GRACE_MS);
    } catch (error) {
      void sent.then(
        (created) => {
          const uploadId = (created as { output?: { UploadId?: string } }).output?.UploadId;
          if (uploadId !== undefined) {
            const { bucket: Bucket, key: Key } = this.#object;
            const abort = new this.#s3.AbortMultipartUploadCommand({
              Bucket,
              Key,
              UploadId: uploadId,
            });
            return this.#client.send(abort).catch(() => {});
          }
        },
        () => {},
      );
      throw error;
    }
  }

  /**
   * AbortMultipartUpload, once: a second caller shares the first's answer. When it fails the
   * warning names the upload at once, whatever the run reports as its error (the parts are
   * stored and billed until someone aborts it), and whoever asks next sends it again.
   */
  #abortOnce<T>(uploadId: string | undefined, send: () => Promise<T>): Promise<T> {
    this.#aborting ??= send().catch((error: unknown) => {
      // The upload is gone already (a retry after a lost answer, a lifecycle rule).
      if (s3Code(error) !== 'NoSuchUpload') {
        this.#aborting = undefined;
        this.#warnAbortFailed(uploadId ?? '', error);
      }
      throw error;
    });
    return this.#aborting as Promise<T>;
  }

  #warnAbortFailed(uploadId: string, error: unknown): void {
    const e = error as { name?: string; message?: string };
    // A listener's own failure must not keep the upload from settling.
    try {
      this.#onEvent?.({
        event: 'abort-failed',
        location: this.location,
        bucket: this.#object.bucket,
        key: this.#object.key,
        uploadId,
        reason: e.name && e.message ? `${e.name}: ${e.message}` : String(error),
      });
    } catch {}
  }

  #tooLarge(partSize: number): SpotifyBatchError {
    const mib = partSize / 1024 / 1024;
    return new SpotifyBatchError(
      'ERR_S3',
      `${this.location} needs more than ${MAX_PARTS} parts of ${mib} MiB (S3's limit): raise --s3-part-size`,
      { context: { bucket: this.#object.bucket, key: this.#object.key } },
    );
  }

  #error(error: unknown): SpotifyBatchError {
    return s3Error(this.#failure ?? error, { ...this.#object, endpoint: this.#endpoint });
  }
}

/**
 * `work`, or its rejection with the signal's reason once `signal` fired (after `graceMs`). The
 * request itself goes on until it is answered or the client is destroyed; its late answer is
 * nobody's.
 */
function unlessCancelled<T>(work: Promise<T>, signal: AbortSignal, graceMs = 0): Promise<T> {
  work.catch(() => {});
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      timer = setTimeout(() => reject(signal.reason), graceMs);
      timer.unref();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    });
  });
}

/** What an object is created with: type, encryption, storage class, tags (a probe sends the same). */
export function objectSettings(
  object: S3Object,
  { sse, sseKmsKeyId, storageClass, tags }: S3Options,
) {
  const tagging = new URLSearchParams(tags).toString();
  return {
    Bucket: object.bucket,
    Key: object.key,
    ContentType: object.contentType,
    ...(sse === undefined ? {} : { ServerSideEncryption: sse }),
    ...(sseKmsKeyId === undefined ? {} : { SSEKMSKeyId: sseKmsKeyId }),
    ...(storageClass === undefined ? {} : { StorageClass: storageClass as 'STANDARD' }),
    ...(tagging === '' ? {} : { Tagging: tagging }),
  };
}
