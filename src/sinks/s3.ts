import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import { SpotifyBatchError } from '../core/errors.ts';
import { nonEmpty, type S3Options } from '../core/options.ts';
import type { SinkResult, StagedSink } from '../core/sink.ts';
import type { EventListener } from '../core/stats.ts';

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

type S3Module = typeof import('@aws-sdk/client-s3');

/** The HTTP handler's own warnings (socket pool at capacity) would break JSON logs. */
const QUIET = { debug() {}, info() {}, warn() {}, error() {} };

/** How long a failed or discarded upload waits for its CreateMultipartUpload answer. */
const CREATE_GRACE_MS = 2_000;

/** S3's most parts in one multipart upload. */
const MAX_PARTS = 10_000;

/**
 * A run's access to S3: one client for all of its outputs (one connection pool, one set of
 * credentials), the bucket checked once before any fetching, and one middleware that gives each
 * output's requests to its {@link S3Sink}: the first failed call stops that output's pipeline
 * at once, and the final request of every upload is held at the commit barrier.
 */
export class S3Store {
  readonly #client: S3Client;
  readonly #options: S3Options;
  readonly #s3: S3Module;
  readonly #sinks = new Map<string, S3Sink>();
  readonly #buckets = new Map<string, Promise<void>>();

  /** The run's signal: the bucket check and every upload's parts stop at once when it fires. */
  readonly #signal: AbortSignal | undefined;
  readonly #onEvent: EventListener | undefined;
  /** AWS_PROFILE, when set: named in a credentials error. */
  readonly #profile: string | undefined;

  private constructor(
    client: S3Client,
    options: S3Options,
    s3: S3Module,
    signal: AbortSignal | undefined,
    onEvent: EventListener | undefined,
    profile: string | undefined,
  ) {
    this.#signal = signal;
    this.#onEvent = onEvent;
    this.#profile = profile;
    this.#client = client;
    this.#options = options;
    this.#s3 = s3;
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
  static async create(
    options: S3Options,
    env: NodeJS.ProcessEnv,
    signal?: AbortSignal,
    onEvent?: EventListener,
  ): Promise<S3Store> {
    const s3 = await import('@aws-sdk/client-s3');
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
    return new S3Store(client, options, s3, signal, onEvent, profile);
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
    const sink = new S3Sink(
      this.#client,
      this.#s3,
      this.#options,
      object,
      this.#signal,
      () => {
        if (this.#sinks.get(id) === sink) this.#sinks.delete(id);
      },
      this.#onEvent,
    );
    this.#sinks.set(id, sink);
    return sink;
  }

  /** An object's ETag, or null when there is none. */
  async version(bucket: string, key: string): Promise<string | null> {
    const { HeadObjectCommand } = this.#s3;
    try {
      return (
        (await this.#client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag ?? ''
      );
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata
        ?.httpStatusCode;
      if (status === 404) return null;
      throw s3Error(error, this.#where(bucket, key));
    }
  }

  /** An object's bytes and ETag, or undefined when there is none. */
  async read(
    bucket: string,
    key: string,
  ): Promise<{ body: NodeJS.ReadableStream; version: string; modified?: Date } | undefined> {
    const { GetObjectCommand } = this.#s3;
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
      throw s3Error(error, this.#where(bucket, key));
    }
  }

  /**
   * A small object written in one conditional PutObject: answers its ETag, or `false` when the
   * condition failed (412: someone else's object is there, or it changed).
   */
  async putIf(object: S3Object & { body: string; condition: Condition }): Promise<string | false> {
    const { PutObjectCommand } = this.#s3;
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
      throw s3Error(error, this.#where(object.bucket, object.key));
    }
  }

  /** Deletes an object if it exists (the commit invalidates the previous run's manifest). */
  async delete(bucket: string, key: string): Promise<void> {
    const { DeleteObjectCommand } = this.#s3;
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      throw s3Error(error, this.#where(bucket, key));
    }
  }

  /**
   * Proves an object could be written at `key` without writing it: the bucket check, then a
   * multipart upload created and aborted at once (no object ever appears).
   */
  async probe(object: S3Object): Promise<void> {
    await this.#checkBucket(object);
    const { CreateMultipartUploadCommand, AbortMultipartUploadCommand } = this.#s3;
    const where = this.#where(object.bucket, object.key);
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

  /** What an error line names: the object, the endpoint, and the profile. */
  #where(bucket: string, key: string) {
    return { bucket, key, endpoint: this.#options.endpoint, profile: this.#profile };
  }

  #checkBucket(object: S3Object): Promise<void> {
    let check = this.#buckets.get(object.bucket);
    if (check === undefined) {
      check = (async () => {
        const { HeadBucketCommand } = this.#s3;
        try {
          await this.#client.send(new HeadBucketCommand({ Bucket: object.bucket }), {
            ...(this.#signal === undefined ? {} : { abortSignal: this.#signal }),
          });
        } catch (error) {
          const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata
            ?.httpStatusCode;
          // 403 on HeadBucket only means no s3:ListBucket; PutObject may still be allowed.
          if (status !== 403) throw s3Error(error, this.#where(object.bucket, object.key));
        }
      })();
      this.#buckets.set(object.bucket, check);
    }
    return check;
  }
}

/**
 * Streams one output into S3 as a multipart upload filled in place: `queueSize + 1` buffers of
 * `partSize` bytes, allocated once per output and reused, `queueSize` parts in flight while the
 * next one fills. Memory is partSize × (queueSize + 1) until the last part is sent: nothing is
 * allocated per part, so nothing waits for V8's full GC to be freed. (lib-storage's Upload, used before,
 * concatenates each part out of the chunks it was given: a 5 MiB copy per part that outlives a
 * few scavenges, and up to 64 MiB of such garbage before V8 collects it; a million albums to S3
 * did not fit in 128 MiB. bench/README.md, "Memory in a container".) An output that fits in one
 * part becomes one PutObject.
 *
 * Staged means the upload reached its final request (CompleteMultipartUpload, or the lone
 * PutObject): {@link S3Store}'s middleware holds it there until the run publishes (the request
 * goes out) or discards (it fails before being sent). A held PutObject keeps its body — less
 * than one part — in memory until then.
 *
 * Failure either way ends both sides: a failed S3 call destroys the writable, so the pipeline
 * stops fetching at once; a pipeline failure or a discard destroys it too, and once the parts in
 * flight settled AbortMultipartUpload goes out — once — before `discard()` returns.
 */
export class S3Sink implements StagedSink {
  readonly location: string;
  readonly writable: Writable;
  readonly staged: Promise<void>;
  readonly #object: S3Object;
  readonly #options: S3Options;
  readonly #endpoint: string | undefined;
  readonly #unregister: () => void;
  readonly #client: S3Client;
  readonly #s3: S3Module;
  /** The whole upload: the final request's answer, or the failure once the abort went out. */
  readonly #done: Promise<{ ETag?: string | undefined }>;
  #resolve: (result: { ETag?: string | undefined }) => void = () => {};
  #reject: (error: Error) => void = () => {};
  #onStaged = () => {};
  #release = () => {};
  #refuse: (reason: Error) => void = () => {};
  readonly #verdict: Promise<void>;
  /** publish() let the final request go. */
  #released = false;
  #published = false;

  // The part buffers (at most queueSize in flight + the one filling): free ones, the filling one.
  readonly #free: Buffer[] = [];
  #current: Buffer | undefined;
  #fill = 0;
  /** A write waiting for a part upload to settle. */
  #waiting: (() => void) | undefined;
  #partNumber = 0;
  readonly #parts: CompletedPart[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  /** CreateMultipartUpload, sent with the first part: the upload id. */
  #created: Promise<string> | undefined;
  #uploadId: string | undefined;
  #failure: Error | undefined;
  #closing: Promise<void> | undefined;
  /**
   * Stops the Create and the parts in flight: fired when the upload fails or is discarded, and
   * by the run's signal, so a stalled S3 does not hold a Ctrl+C (the abort waits for them).
   */
  readonly #cancel = new AbortController();
  readonly #cancelled: AbortSignal;
  #aborted: Promise<void> | undefined;
  readonly #onEvent: EventListener | undefined;
  #ended = false;

  constructor(
    client: S3Client,
    s3: S3Module,
    options: S3Options,
    object: S3Object,
    signal: AbortSignal | undefined,
    unregister: () => void,
    onEvent?: EventListener,
  ) {
    this.#onEvent = onEvent;
    this.#cancelled =
      signal === undefined ? this.#cancel.signal : AbortSignal.any([signal, this.#cancel.signal]);
    this.#object = object;
    this.#client = client;
    this.#s3 = s3;
    this.#options = options;
    this.#endpoint = options.endpoint;
    this.#unregister = unregister;
    this.location = `s3://${object.bucket}/${object.key}`;
    this.#verdict = new Promise<void>((resolve, reject) => {
      this.#release = resolve;
      this.#refuse = reject;
    });
    this.#verdict.catch(() => {});
    this.#done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#done.catch(() => {});
    this.staged = new Promise<void>((resolve, reject) => {
      this.#onStaged = resolve;
      this.#done.catch((error: unknown) => reject(this.#error(error)));
    });
    this.staged.catch(() => {});
    this.writable = new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _encoding, callback) => {
        this.#write(chunk).then(() => callback(), callback);
      },
      final: (callback) => {
        this.#end().then(() => callback(), callback);
      },
      destroy: (error, callback) => {
        // After a normal end (autoDestroy) the final request owns the outcome.
        if (error !== null || !this.#ended) {
          void this.#close(
            this.#error(error ?? new Error(`${this.location}: closed before its end`)),
          );
        }
        callback(error);
      },
    });
    // A failure surfaces through `staged` and `publish()`; outputs written outside a pipeline
    // (rejects, raw, the report) have no other listener, and an unheard 'error' would crash.
    this.writable.on('error', () => {});
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
      parts: Math.max(1, this.#partNumber),
    };
  }

  async discard(reason: unknown): Promise<void> {
    if (this.#published) return;
    const error = reason instanceof Error ? reason : new Error(String(reason));
    this.#refuse(error);
    if (!this.writable.destroyed) this.writable.destroy(error);
    // Settles once the abort went out (or was not needed).
    await this.#done.catch(() => {});
    this.#unregister();
  }

  async abandon(): Promise<void> {
    const uploadId = this.#uploadId;
    // A Complete already sent is let be: aborting under it would make a part-way publish.
    if (this.#released || uploadId === undefined) return;
    await this.#abort(uploadId);
  }

  /**
   * Copies a chunk into the part buffers. A full buffer is sent once more bytes come (so an
   * output of exactly one part is still one PutObject), when fewer than queueSize are in flight.
   */
  async #write(chunk: Buffer): Promise<void> {
    const { partSize, queueSize } = this.#options;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#current !== undefined && this.#fill === partSize) {
        if (this.#partNumber === MAX_PARTS - 1) throw this.#tooLarge();
        while (this.#inFlight.size >= queueSize) await this.#partDone();
        this.#send();
      }
      this.#current ??= this.#free.pop() ?? Buffer.allocUnsafeSlow(partSize);
      const copied = chunk.copy(this.#current, this.#fill, offset);
      this.#fill += copied;
      offset += copied;
    }
  }

  /** Waits for a part upload to settle; throws the upload's failure if there is one. */
  async #partDone(): Promise<void> {
    if (this.#failure === undefined) {
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
      });
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }

  /** Uploads the filling buffer as the next part; its buffer is free again once S3 answered. */
  #send(): void {
    const buffer = this.#current as Buffer;
    const body = buffer.subarray(0, this.#fill);
    const partNumber = ++this.#partNumber;
    this.#current = undefined;
    this.#fill = 0;
    const { bucket: Bucket, key: Key } = this.#object;
    const task = (async () => {
      try {
        const UploadId = await this.#create();
        const out = await this.#client.send(
          new this.#s3.UploadPartCommand({
            Bucket,
            Key,
            UploadId,
            PartNumber: partNumber,
            Body: body,
          }),
          { abortSignal: this.#cancelled },
        );
        if (out.ETag === undefined) {
          throw new Error(`S3 answered part ${partNumber} without an ETag`);
        }
        this.#parts.push({
          PartNumber: partNumber,
          ETag: out.ETag,
          ...(out.ChecksumCRC32 && { ChecksumCRC32: out.ChecksumCRC32 }),
          ...(out.ChecksumCRC32C && { ChecksumCRC32C: out.ChecksumCRC32C }),
          ...(out.ChecksumCRC64NVME && { ChecksumCRC64NVME: out.ChecksumCRC64NVME }),
          ...(out.ChecksumSHA1 && { ChecksumSHA1: out.ChecksumSHA1 }),
          ...(out.ChecksumSHA256 && { ChecksumSHA256: out.ChecksumSHA256 }),
        });
        this.#free.push(buffer);
      } catch (error) {
        this.fail(error);
      }
    })();
    this.#inFlight.add(task);
    // Out of the set before the waiting write looks at it.
    void task.then(() => {
      this.#inFlight.delete(task);
      this.#wake();
    });
  }

  /** CreateMultipartUpload, once, with the object's settings (the first part waits for it). */
  #create(): Promise<string> {
    this.#created ??= (async () => {
      const checksum = await this.#client.config.requestChecksumCalculation();
      const { UploadId } = await this.#client.send(
        new this.#s3.CreateMultipartUploadCommand({
          ...this.#settings(),
          // As lib-storage does: the parts' default CRC32 checksums are declared up front.
          ...(checksum === 'WHEN_SUPPORTED' ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
        }),
      );
      if (UploadId === undefined)
        throw new Error('S3 answered CreateMultipartUpload without an id');
      this.#uploadId = UploadId;
      return UploadId;
    })();
    return this.#created;
  }

  /**
   * The end of the bytes: the last part goes, and once every part is in, the final request is
   * sent (not awaited: the barrier holds it until the run's verdict). One part in all is one
   * PutObject instead.
   */
  async #end(): Promise<void> {
    const { bucket: Bucket, key: Key } = this.#object;
    const condition = this.#object.condition;
    const conditional =
      condition === undefined
        ? {}
        : 'ifMatch' in condition
          ? { IfMatch: condition.ifMatch }
          : { IfNoneMatch: condition.ifNoneMatch };
    let final: Promise<{ ETag?: string | undefined }>;
    if (this.#partNumber === 0) {
      // The body waits at the barrier until the run publishes: its own bytes, not a part buffer.
      const body = Buffer.from(this.#current?.subarray(0, this.#fill) ?? []);
      this.#releaseBuffers();
      final = this.#client.send(
        new this.#s3.PutObjectCommand({ ...this.#settings(), ...conditional, Body: body }),
      );
    } else {
      if (this.#fill > 0) {
        while (this.#inFlight.size >= this.#options.queueSize) await this.#partDone();
        this.#send();
      }
      while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
      this.#releaseBuffers();
      if (this.#failure !== undefined) throw this.#failure;
      const parts = [...this.#parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      final = this.#client.send(
        new this.#s3.CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId: this.#uploadId,
          MultipartUpload: { Parts: parts },
          ...conditional,
        }),
      );
    }
    this.#ended = true;
    final.then(
      (result) => this.#resolve(result),
      (error: unknown) => void this.#close(this.#error(error)),
    );
  }

  /**
   * Ends the upload as failed, once: no more writes, the parts in flight settle, then
   * AbortMultipartUpload if one was created, then `done` rejects with the first failure.
   */
  #close(error: Error): Promise<void> {
    this.#closing ??= (async () => {
      this.#failure ??= error;
      this.#wake();
      this.#cancel.abort(error);
      try {
        while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
        this.#releaseBuffers();
        // A Create still in flight is not cancelled (S3 may have made the upload already): it
        // is waited for briefly, and aborted whenever it lands.
        const created = this.#created?.catch(() => undefined);
        void created?.then((id) => (id === undefined ? undefined : this.#abort(id)));
        const uploadId = await Promise.race([
          created,
          delay(CREATE_GRACE_MS, undefined, { ref: false }),
        ]);
        if (uploadId !== undefined) await this.#abort(uploadId);
      } finally {
        // Whatever happened above, `done` settles: a discard and the commit wait for it.
        this.#reject(this.#failure);
      }
    })();
    return this.#closing;
  }

  /**
   * Every part is sent (or the upload failed): the buffers go now, not when the run publishes,
   * so a run's staged outputs (one per market) do not each keep theirs.
   */
  #releaseBuffers(): void {
    this.#free.length = 0;
    this.#current = undefined;
  }

  #tooLarge(): SpotifyBatchError {
    const mib = this.#options.partSize / 1024 / 1024;
    return new SpotifyBatchError(
      'ERR_S3',
      `${this.location} needs more than ${MAX_PARTS} parts of ${mib} MiB (S3's limit): raise --s3-part-size`,
      { context: { bucket: this.#object.bucket, key: this.#object.key } },
    );
  }

  /** AbortMultipartUpload, sent once whoever asks first (the failure path, a second signal). */
  #abort(uploadId: string): Promise<void> {
    this.#aborted ??= this.#client
      .send(
        new this.#s3.AbortMultipartUploadCommand({
          Bucket: this.#object.bucket,
          Key: this.#object.key,
          UploadId: uploadId,
        }),
      )
      .then(
        () => {},
        (error: unknown) => {
          const e = error as { name?: string; message?: string };
          // The upload is gone already (a retry after a lost answer, a lifecycle rule).
          if (e.name === 'NoSuchUpload') return;
          this.#aborted = undefined; // failed: whoever asks next sends it again
          // Said at once, whatever the run reports as its error: the parts are stored and
          // billed until someone aborts the upload. A listener's own failure must not keep
          // the upload from settling.
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
        },
      );
    return this.#aborted;
  }

  /** What the object is created with: type, encryption, storage class, tags. */
  #settings() {
    const { sse, sseKmsKeyId, storageClass, tags } = this.#options;
    const tagging = new URLSearchParams(tags).toString();
    return {
      Bucket: this.#object.bucket,
      Key: this.#object.key,
      ContentType: this.#object.contentType,
      ...(sse === undefined ? {} : { ServerSideEncryption: sse }),
      ...(sseKmsKeyId === undefined ? {} : { SSEKMSKeyId: sseKmsKeyId }),
      ...(storageClass === undefined ? {} : { StorageClass: storageClass as 'STANDARD' }),
      ...(tagging === '' ? {} : { Tagging: tagging }),
    };
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
  where: {
    bucket: string;
    key: string;
    endpoint?: string | undefined;
    /** AWS_PROFILE, when set. */
    profile?: string | undefined;
  },
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
      where.profile === undefined
        ? `no AWS credentials found for ${url}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role`
        : `no AWS credentials found for ${url} through profile ${where.profile} (AWS_PROFILE): check that ~/.aws/config or ~/.aws/credentials has it and that it gives credentials (an SSO profile needs \`aws sso login\`), or unset AWS_PROFILE`,
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
    // The HTTP handler prefixes its own name: the reason is what follows.
    const reason = (err.message ?? code).replace(/^@smithy\/node-http-handler - (\[\w+\] )?/, '');
    return make('ERR_S3', `cannot reach ${endpoint} writing ${url}: ${reason}`);
  }
  return make(
    'ERR_S3',
    `S3 error writing ${url}: ${name ? `${name}: ` : ''}${err.message ?? String(error)}`,
  );
}
