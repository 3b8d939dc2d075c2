import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import S3rver from 's3rver';
import { Waiters } from '../src/emulator/wait.ts';

/**
 * What an S3 request is, from its method, path and query (AWS's operation names, shortened):
 *
 * | kind | operation | request |
 * | --- | --- | --- |
 * | `create` | CreateMultipartUpload | `POST /bucket/key?uploads` |
 * | `part` | UploadPart | `PUT /bucket/key?partNumber&uploadId` |
 * | `complete` | CompleteMultipartUpload | `POST /bucket/key?uploadId` |
 * | `abort` | AbortMultipartUpload | `DELETE /bucket/key?uploadId` |
 * | `listParts` | ListParts | `GET /bucket/key?uploadId` |
 * | `put` | PutObject (a whole object) | `PUT /bucket/key`, no uploadId, no copy source |
 * | `copy` | CopyObject | `PUT /bucket/key` with `x-amz-copy-source` |
 * | `get`, `head`, `delete` | GetObject, HeadObject, DeleteObject | `GET`/`HEAD`/`DELETE /bucket/key` |
 * | `deleteObjects` | DeleteObjects | `POST /bucket?delete` |
 * | `headBucket`, `createBucket`, `deleteBucket` | HeadBucket, CreateBucket, DeleteBucket | `HEAD`/`PUT`/`DELETE /bucket` |
 * | `listUploads` | ListMultipartUploads | `GET /bucket?uploads` |
 * | `list` | ListObjects(V2) and other bucket reads | `GET /bucket` |
 * | `other` | anything else (ListBuckets, …) | |
 */
export type S3RequestKind =
  | 'create'
  | 'part'
  | 'complete'
  | 'abort'
  | 'listParts'
  | 'put'
  | 'copy'
  | 'get'
  | 'head'
  | 'delete'
  | 'deleteObjects'
  | 'headBucket'
  | 'createBucket'
  | 'deleteBucket'
  | 'listUploads'
  | 'list'
  | 'other';

/** One request the local S3 received. */
export interface S3Call {
  method: string;
  kind: S3RequestKind;
  bucket: string;
  /** The object key, decoded; `''` for bucket and service requests. */
  key: string;
  /**
   * The multipart upload a part, complete, abort or listParts request names; for a create, the
   * upload it created (once answered).
   */
  uploadId?: string;
  /** A part's `partNumber`. */
  partNumber?: number;
  /**
   * The status answered, filled in when the request ends; 0 when it ended without an answer
   * (a reset, or the client left); undefined while it is in progress.
   */
  status?: number;
}

/**
 * A fault for the local S3: which requests it fires on and what happens to them. It counts the
 * requests that match `kind` (and `bucket`/`key` if given), lets the first `nth - 1` through,
 * then acts on the next `times` of them, then lets the rest through again.
 *
 * The AWS SDK retries 5xx answers and resets (3 attempts by default; this project's S3 sink
 * sets 5), and each attempt is a request here: a test that wants a call to fail for good
 * passes e.g. `times: Infinity`.
 */
export interface S3FaultRule {
  /** The requests it fires on. */
  kind: S3RequestKind;
  /** Only requests for this bucket. */
  bucket?: string;
  /** Only requests for this key (exact, or a pattern tested against the decoded key). */
  key?: string | RegExp;
  /** The first matching request it acts on, 1-based. @default 1 */
  nth?: number;
  /** How many matching requests in a row it acts on, from the `nth`; `Infinity` for all. @default 1 */
  times?: number;
  /**
   * Answer with this status and an S3 XML error body (`<Error><Code>…</Code><Message>…`),
   * after reading the request body, without passing the request to s3rver.
   */
  status?: number;
  /** The error `Code` with `status`. @default by status: 400 InvalidRequest, 403 AccessDenied,
   * 404 NoSuchUpload (multipart calls) / NoSuchBucket (bucket calls) / NoSuchKey, 500
   * InternalError, 501 NotImplemented, 503 SlowDown; else InternalError or InvalidRequest */
  code?: string;
  /** The error `Message` with `status`. @default a message like S3's for the code */
  message?: string;
  /**
   * Wait this long before handling the request: alone, a slow answer that then goes through;
   * with `status` or `reset`, a slow failure.
   */
  delayMs?: number;
  /** Destroy the connection without an answer (the client sees a reset or a hang-up). */
  reset?: boolean;
  /**
   * Only requests of uploads that have received a part: the data's own abort, not the one of a
   * run's preflight probe (an upload created and aborted empty, src/plan/preflight.ts).
   */
  staged?: boolean;
}

/** A fault added with {@link LocalS3.fault}. */
export interface S3Fault {
  readonly rule: Readonly<S3FaultRule>;
  /** Requests that matched its kind/bucket/key so far (fired or not). */
  readonly matched: number;
  /** Requests it acted on so far. */
  readonly fired: number;
  /** Stops it acting on further requests. */
  remove(): void;
}

export interface LocalS3 {
  endpoint: string;
  client: S3Client;
  /** Environment for the CLI: endpoint and static credentials s3rver accepts. */
  env: NodeJS.ProcessEnv;
  /**
   * Requests S3 received, in order, as `METHOD query-kind` strings (`PUT part`, `POST complete`,
   * `POST uploads`, `DELETE upload`, `PUT object` for PutObject; `METHOD bucket` for bucket
   * requests). {@link LocalS3.calls} says the same with one precise kind per operation.
   */
  requests: string[];
  /** Requests S3 received, in order; `calls[i]` is the request `requests[i]` describes. */
  calls: S3Call[];
  /**
   * How many requests of `kind` arrived, counting from `calls[from]` (e.g. `calls.length` noted
   * before a step). With `probes: false`, without the create and abort of preflight probes:
   * uploads aborted without ever receiving a part or a complete.
   */
  count(kind: S3RequestKind, from?: number, options?: { probes?: boolean }): number;
  /** Adds a fault; faults are checked in the order added, and the first that fires acts. */
  fault(rule: S3FaultRule): S3Fault;
  /** Removes every fault. */
  clearFaults(): void;
  /**
   * Holds every UploadPart (or those `match` accepts) until the returned function is called: an
   * S3 that stops taking data. A part a fault acts on is not held. A part waits for the first
   * unreleased hold that matches it.
   */
  holdParts(match?: (call: S3Call) => boolean): () => void;
  /** UploadPart requests being held right now. */
  heldParts: number;
  /**
   * Resolves once `condition` holds: checked now, then after each request's arrival, its end
   * (`status` filled in) and each change of `heldParts`. With `signal`, rejects when it aborts
   * first (tie it to the run under test, so a wait for what it never did fails once it ended).
   */
  waitFor(
    condition: (calls: readonly S3Call[], s3: LocalS3) => boolean,
    options?: { signal?: AbortSignal },
  ): Promise<void>;
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
  headers: Record<string, string | string[] | undefined>;
  req: IncomingMessage;
  res: ServerResponse;
  status: number;
  body: unknown;
  /** false: Koa leaves the response alone (the socket was destroyed). */
  respond: boolean;
  set(name: string, value: string): void;
  /** A request header, or '' when absent. */
  get(name: string): string;
}

const SUBRESOURCES = new Set([
  'acl',
  'attributes',
  'legal-hold',
  'restore',
  'retention',
  'select',
  'tagging',
  'torrent',
  'uploads',
]);

/** Classifies a request; see {@link S3RequestKind}. */
function classify(
  method: string,
  path: string,
  query: Record<string, unknown>,
  headers: Record<string, unknown> = {},
): S3Call {
  const slash = path.indexOf('/', 1);
  const bucket = decode(slash === -1 ? path.slice(1) : path.slice(1, slash));
  const key = slash === -1 ? '' : decode(path.slice(slash + 1));
  const uploadId = typeof query.uploadId === 'string' ? query.uploadId : undefined;
  const partNumber = typeof query.partNumber === 'string' ? Number(query.partNumber) : undefined;
  const call = (kind: S3RequestKind): S3Call => ({
    method,
    kind,
    bucket,
    key,
    ...(uploadId === undefined ? {} : { uploadId }),
    ...(kind === 'part' && partNumber !== undefined ? { partNumber } : {}),
  });
  // The SDK names the operation in `x-id` on some requests; it is not a parameter.
  const params = Object.keys(query).filter((name) => name !== 'x-id');
  if (bucket === '') return call('other');
  if (key === '') {
    if (method === 'HEAD') return call('headBucket');
    if (method === 'PUT' && params.length === 0) return call('createBucket');
    if (method === 'DELETE' && params.length === 0) return call('deleteBucket');
    if (method === 'POST' && 'delete' in query) return call('deleteObjects');
    if (method === 'GET') return call('uploads' in query ? 'listUploads' : 'list');
    return call('other');
  }
  if ('uploadId' in query) {
    if (method === 'PUT' && 'partNumber' in query) return call('part');
    if (method === 'POST') return call('complete');
    if (method === 'DELETE') return call('abort');
    if (method === 'GET') return call('listParts');
    return call('other');
  }
  if (method === 'POST' && 'uploads' in query) return call('create');
  // Subresources (?tagging, ?acl, ...) are not the object itself.
  if (params.some((name) => SUBRESOURCES.has(name))) return call('other');
  switch (method) {
    case 'PUT':
      return call('x-amz-copy-source' in headers ? 'copy' : 'put');
    case 'GET':
      return call('get');
    case 'HEAD':
      return call('head');
    case 'DELETE':
      return call('delete');
    default:
      return call('other');
  }
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The `METHOD query-kind` strings {@link LocalS3.requests} has always held. */
function legacyKind(call: S3Call, query: Record<string, unknown>): string {
  const kind =
    'uploadId' in query && 'partNumber' in query
      ? 'part'
      : 'uploadId' in query
        ? call.method === 'POST'
          ? 'complete'
          : 'upload'
        : 'uploads' in query
          ? 'uploads'
          : call.key === ''
            ? 'bucket'
            : 'object';
  return `${call.method} ${kind}`;
}

const ERROR_CODES: Record<number, [string, string]> = {
  400: ['InvalidRequest', 'Invalid Request'],
  403: ['AccessDenied', 'Access Denied'],
  500: ['InternalError', 'We encountered an internal error. Please try again.'],
  501: ['NotImplemented', 'A header you provided implies functionality that is not implemented'],
  503: ['SlowDown', 'Please reduce your request rate.'],
};

function errorCode(status: number, kind: S3RequestKind): [string, string] {
  if (status === 404) {
    if (['part', 'complete', 'abort', 'listParts'].includes(kind))
      return [
        'NoSuchUpload',
        'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      ];
    if (['headBucket', 'createBucket', 'deleteBucket', 'list', 'listUploads'].includes(kind))
      return ['NoSuchBucket', 'The specified bucket does not exist'];
    return ['NoSuchKey', 'The specified key does not exist.'];
  }
  return (
    ERROR_CODES[status] ??
    (status >= 500
      ? ['InternalError', 'We encountered an internal error. Please try again.']
      : ['InvalidRequest', 'Invalid Request'])
  );
}

/** SHA-256 and HMAC-SHA-256 from node:crypto in the shape @smithy/signature-v4 asks for. */
class Sha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/**
 * Checks a request signed with AWS Signature Version 4 in its `Authorization` header, as S3
 * does, and says what S3 would answer when it is wrong: `InvalidAccessKeyId` for a key id
 * other than `accessKeyId`, `SignatureDoesNotMatch` when re-signing the request with
 * `secretAccessKey` (the same x-amz-date, region, service and signed headers) gives another
 * signature. s3rver itself checks only the key id ("Signature version 4 calculation is
 * unimplemented").
 *
 * The payload is taken as the client declared it in `x-amz-content-sha256` (a hash,
 * `UNSIGNED-PAYLOAD` or `STREAMING-…`): that value is what the header signature covers, so a
 * wrong secret is caught without reading the body. Not checked: that the body matches its
 * declared hash, a streaming upload's chunk signatures, the clock skew, and requests signed in
 * the query string (presigned URLs) or not signed at all, which go to s3rver as they are.
 */
export async function verifySigV4(
  request: { method: string; url: string; headers: IncomingMessage['headers'] },
  credentials: { accessKeyId: string; secretAccessKey: string },
): Promise<{ code: string; message: string } | undefined> {
  const authorization = request.headers.authorization;
  if (!authorization?.startsWith('AWS4-HMAC-SHA256 ')) return undefined;
  const denied = {
    code: 'AccessDenied',
    message: `the Authorization header is malformed: ${authorization}`,
  };
  const parsed = AUTHORIZATION.exec(authorization);
  if (!parsed) return denied;
  const [, keyId = '', , region = '', service = '', signedList = '', signature = ''] = parsed;
  if (keyId !== credentials.accessKeyId)
    return {
      code: 'InvalidAccessKeyId',
      message: 'The AWS Access Key Id you provided does not exist in our records.',
    };
  const amzDate = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(
    String(request.headers['x-amz-date'] ?? ''),
  );
  if (!amzDate) return denied;
  const [, year, month, day, hour, minute, second] = amzDate.map(Number);
  const signingDate = new Date(
    Date.UTC(year ?? 0, (month ?? 1) - 1, day ?? 0, hour ?? 0, minute ?? 0, second ?? 0),
  );
  const signed = signedList.split(';');
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const value = request.headers[name];
    if (value === undefined) return denied;
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const at = request.url.indexOf('?');
  const path = at === -1 ? request.url : request.url.slice(0, at);
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of new URLSearchParams(at === -1 ? '' : request.url.slice(at + 1))) {
    const seen = query[name];
    query[name] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
  }
  const signer = new SignatureV4({
    credentials,
    region,
    service,
    sha256: Sha256,
    // S3 signs the path as sent, without normalizing or encoding it again.
    uriEscapePath: false,
    applyChecksum: false,
  });
  const resigned = await signer.sign(
    { method: request.method, protocol: 'http:', hostname: '', path, query, headers },
    {
      signingDate,
      signableHeaders: new Set(signed),
      signingRegion: region,
      signingService: service,
    },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(resigned.headers.authorization))?.[1];
  if (expected === signature) return undefined;
  return {
    code: 'SignatureDoesNotMatch',
    message:
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
  };
}

const xmlEscape = (text: string) => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * ListObjectsV2 answered from s3rver's own store: s3rver makes its continuation tokens with DES,
 * which Node's OpenSSL 3 no longer has, so any listing of more than `max-keys` (1,000) keys was
 * a 500. The token here is the last key listed, base64url-encoded.
 *
 * Test infrastructure reading s3rver's internals, written against s3rver 3.7.1 (the koa
 * context's `store`, its FilesystemStore: `getBucket`, `listObjects`): check it when s3rver
 * is upgraded.
 */
async function listObjectsV2(ctx: KoaContext, bucket: string): Promise<void> {
  interface Store {
    getBucket(bucket: string): Promise<unknown>;
    listObjects(
      bucket: string,
      options: { prefix?: string; startAfter?: string; maxKeys?: number; delimiter?: string },
    ): Promise<{
      objects: { key: string; lastModifiedDate: Date; size: number; metadata: { etag: string } }[];
      commonPrefixes: string[];
      isTruncated: boolean;
    }>;
  }
  const store = (ctx as unknown as { store: Store }).store;
  const q = (name: string) => (ctx.query[name] === undefined ? undefined : String(ctx.query[name]));
  ctx.set('content-type', 'application/xml');
  if ((await store.getBucket(bucket)) === null) {
    ctx.status = 404;
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>${xmlEscape(bucket)}</BucketName></Error>`;
    return;
  }
  const token = q('continuation-token');
  const maxKeys = Math.min(1000, Number(q('max-keys') ?? 1000));
  const prefix = q('prefix') ?? '';
  const delimiter = q('delimiter');
  const result = await store.listObjects(bucket, {
    prefix,
    maxKeys,
    ...(delimiter === undefined ? {} : { delimiter }),
    startAfter:
      token === undefined
        ? (q('start-after') ?? '')
        : Buffer.from(token, 'base64url').toString('utf8'),
  });
  const last = result.objects.at(-1)?.key;
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xmlEscape(bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${result.objects.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${result.isTruncated}</IsTruncated>${
    token === undefined ? '' : `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>`
  }${
    result.isTruncated && last !== undefined
      ? `<NextContinuationToken>${Buffer.from(last).toString('base64url')}</NextContinuationToken>`
      : ''
  }${result.objects
    .map(
      (o) =>
        `<Contents><Key>${xmlEscape(o.key)}</Key><LastModified>${o.lastModifiedDate.toISOString()}</LastModified><ETag>${xmlEscape(o.metadata.etag)}</ETag><Size>${o.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    )
    .join(
      '',
    )}${result.commonPrefixes.map((p) => `<CommonPrefixes><Prefix>${xmlEscape(p)}</Prefix></CommonPrefixes>`).join('')}</ListBucketResult>`;
}

/**
 * s3rver on loopback with the two calls it lacks and this project's tests need:
 * AbortMultipartUpload and ListMultipartUploads, implemented on s3rver's own upload folders
 * (`<dir>/<bucket>/._S3rver_uploads/<uploadId>`, removed by s3rver when an upload completes);
 * plus fault injection by request kind ({@link LocalS3.fault}) and a log of every request.
 * It checks SigV4 signatures as S3 does ({@link verifySigV4}), which s3rver does not: a wrong
 * secret is refused with 403 SignatureDoesNotMatch.
 */
export async function startS3(): Promise<LocalS3> {
  const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-s3-'));
  /** The one key s3rver knows; every SigV4-signed request must be signed with its secret. */
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir });
  const uploadsDir = (bucket: string) => join(dir, bucket, '._S3rver_uploads');
  const requests: string[] = [];
  const calls: S3Call[] = [];
  /** Uploads that have received a part (see {@link S3FaultRule.staged}). */
  const withParts = new Set<string>();
  let faults: { rule: S3FaultRule; matched: number; fired: number }[] = [];
  const holds: { match: (call: S3Call) => boolean; released: Promise<void> }[] = [];
  let faultId = 0;
  /** Conditional writes in progress, per bucket/key (see the middleware). */
  const conditional = new Map<string, Promise<void>>();
  /** `bucket/uploadId` of every upload aborted: S3 lists them no more and takes no more parts. */
  const aborted = new Set<string>();
  const removeUpload = (bucket: string, uploadId: string) =>
    rm(join(uploadsDir(bucket), uploadId), {
      recursive: true,
      force: true,
      maxRetries: 10,
      retryDelay: 20,
    });
  /** Answers as S3 does, after reading the request (a part's body) so the connection stays usable. */
  const answerError = async (
    ctx: KoaContext,
    kind: S3RequestKind,
    status: number,
    code?: string,
    message?: string,
  ) => {
    for await (const _ of ctx.req);
    const [defaultCode, defaultMessage] = errorCode(status, kind);
    const requestId = `LOCALS3FAULT${++faultId}`;
    ctx.status = status;
    ctx.set('content-type', 'application/xml');
    ctx.set('x-amz-request-id', requestId);
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(
      code ?? defaultCode,
    )}</Code><Message>${xmlEscape(message ?? defaultMessage)}</Message><RequestId>${requestId}</RequestId></Error>`;
  };
  const waiters = new Waiters(() => calls);
  const local = {
    heldParts: 0,
    holdParts(match: (call: S3Call) => boolean = () => true) {
      let release = () => {};
      const released = new Promise<void>((resolve) => {
        release = () => {
          const at = holds.indexOf(entry);
          if (at !== -1) holds.splice(at, 1);
          resolve();
        };
      });
      const entry = { match, released };
      holds.push(entry);
      return release;
    },
    waitFor(
      condition: (calls: readonly S3Call[], s3: LocalS3) => boolean,
      options: { signal?: AbortSignal } = {},
    ) {
      return waiters.waitFor((all) => condition(all, local), options);
    },
    count(kind: S3RequestKind, from = 0, { probes = true } = {}) {
      const probe = (id: string | undefined) =>
        id !== undefined &&
        calls.some((c) => c.kind === 'abort' && c.uploadId === id) &&
        !calls.some((c) => (c.kind === 'part' || c.kind === 'complete') && c.uploadId === id);
      let n = 0;
      for (let i = from; i < calls.length; i++) {
        const call = calls[i];
        if (call?.kind === kind && (probes || !probe(call.uploadId))) n++;
      }
      return n;
    },
    fault(rule: S3FaultRule): S3Fault {
      const nth = rule.nth ?? 1;
      const times = rule.times ?? 1;
      if (!Number.isInteger(nth) || nth < 1)
        throw new RangeError(`fault nth must be an integer >= 1, got ${nth}`);
      if (!(Number.isInteger(times) || times === Number.POSITIVE_INFINITY) || times < 1)
        throw new RangeError(`fault times must be an integer >= 1 or Infinity, got ${times}`);
      if (rule.status === undefined && !rule.reset && rule.delayMs === undefined)
        throw new TypeError('a fault needs status, delayMs or reset');
      if (rule.status !== undefined && rule.reset)
        throw new TypeError('a fault answers with status or resets, not both');
      if (rule.status !== undefined && !(rule.status >= 400 && rule.status <= 599))
        throw new RangeError(`fault status must be 400..599, got ${rule.status}`);
      const entry = { rule: { ...rule }, matched: 0, fired: 0 };
      faults.push(entry);
      return {
        rule: entry.rule,
        get matched() {
          return entry.matched;
        },
        get fired() {
          return entry.fired;
        },
        remove() {
          faults = faults.filter((f) => f !== entry);
        },
      };
    },
    clearFaults() {
      faults = [];
    },
  } as LocalS3;

  /** The fault that acts on this request, if any; every matching fault counts it. */
  const pick = (call: S3Call): S3FaultRule | undefined => {
    let chosen: S3FaultRule | undefined;
    for (const f of faults) {
      const { rule } = f;
      if (rule.kind !== call.kind) continue;
      if (rule.bucket !== undefined && rule.bucket !== call.bucket) continue;
      if (typeof rule.key === 'string' && rule.key !== call.key) continue;
      if (rule.key instanceof RegExp && !rule.key.test(call.key)) continue;
      if (rule.staged && !withParts.has(call.uploadId ?? '')) continue;
      const occurrence = ++f.matched;
      const first = rule.nth ?? 1;
      if (chosen || occurrence < first || occurrence >= first + (rule.times ?? 1)) continue;
      f.fired++;
      chosen = rule;
    }
    return chosen;
  };

  const middleware = async (ctx: KoaContext, next: () => Promise<void>) => {
    const call = classify(ctx.method, ctx.path, ctx.query, ctx.headers);
    requests.push(legacyKind(call, ctx.query));
    calls.push(call);
    // The status once the answer went out (or 0 without one), for tests that await it.
    ctx.res.once('close', () => {
      call.status = ctx.res.writableFinished ? ctx.res.statusCode : 0;
      waiters.notify();
    });
    waiters.notify();
    // Like S3, a request is authenticated before anything else happens to it.
    const refused = await verifySigV4(
      { method: ctx.method, url: ctx.req.url ?? ctx.path, headers: ctx.req.headers },
      credentials,
    );
    if (refused) {
      await answerError(ctx, call.kind, 403, refused.code, refused.message);
      return;
    }
    if (call.kind === 'part') withParts.add(call.uploadId ?? '');
    const fault = pick(call);
    if (fault) {
      if (fault.delayMs) await sleep(fault.delayMs);
      if (fault.reset) {
        ctx.respond = false;
        ctx.req.socket.destroy();
        return;
      }
      if (fault.status !== undefined) {
        // Like S3, read the request (a part's body) before answering, so the connection
        // stays usable and the client sees the answer rather than a broken pipe.
        await answerError(ctx, call.kind, fault.status, fault.code, fault.message);
        return;
      }
    }
    const upload = `${call.bucket}/${ctx.query.uploadId}`;
    if (call.kind === 'abort') {
      aborted.add(upload);
      // A part that lands while the upload is removed (a stop cancels parts and aborts at once)
      // can make the removal meet ENOTEMPTY; S3 answers the abort anyway, so retry the removal.
      await removeUpload(call.bucket, String(ctx.query.uploadId));
      ctx.status = 204;
      return;
    }
    if (call.kind === 'listUploads') {
      const ids = await local.openUploads(call.bucket);
      ctx.set('content-type', 'application/xml');
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${call.bucket}</Bucket>${ids
        .map((id) => `<Upload><UploadId>${id}</UploadId></Upload>`)
        .join('')}</ListMultipartUploadsResult>`;
      return;
    }
    if (call.kind === 'list' && ctx.query['list-type'] === '2') {
      await listObjectsV2(ctx, call.bucket);
      return;
    }
    const hold = call.kind === 'part' ? holds.find((h) => h.match(call)) : undefined;
    if (hold) {
      local.heldParts++;
      waiters.notify();
      await hold.released;
      local.heldParts--;
      waiters.notify();
    }
    if ((call.kind === 'part' || call.kind === 'complete') && aborted.has(upload)) {
      // Like S3: an aborted upload takes no more parts (s3rver would re-create its folder).
      await answerError(ctx, call.kind, 404);
      return;
    }
    const ifNoneMatch = ctx.get('if-none-match');
    const ifMatch = ctx.get('if-match');
    if (
      ((call.kind === 'put' || call.kind === 'complete') && (ifNoneMatch || ifMatch)) ||
      (call.kind === 'delete' && ifMatch)
    ) {
      // S3's conditional writes and deletes (which s3rver lacks): one conditional request per
      // key at a time, so two of them cannot both see the key absent, or both delete it.
      const id = `${call.bucket}/${call.key}`;
      const previous = conditional.get(id) ?? Promise.resolve();
      let unlock = () => {};
      const mine = new Promise<void>((resolve) => {
        unlock = resolve;
      });
      conditional.set(
        id,
        previous.then(() => mine),
      );
      await previous;
      try {
        const current = await client
          .send(new HeadObjectCommand({ Bucket: call.bucket, Key: call.key }))
          .then(
            (head) => head.ETag,
            () => undefined,
          );
        if ((ifNoneMatch === '*' && current !== undefined) || (ifMatch && ifMatch !== current)) {
          for await (const _ of ctx.req);
          ctx.status = 412;
          ctx.set('content-type', 'application/xml');
          ctx.body =
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>';
          return;
        }
        await next();
      } finally {
        unlock();
      }
      return;
    }
    await next();
    if (call.kind === 'create') {
      // The id the upload was created with: later requests name it, so a probe can be told apart.
      const body: unknown = ctx.body;
      const id =
        typeof body === 'string'
          ? /<UploadId>([^<]+)<\/UploadId>/.exec(body)?.[1]
          : (body as { InitiateMultipartUploadResult?: { UploadId?: string } } | undefined)
              ?.InitiateMultipartUploadResult?.UploadId;
      if (id !== undefined) call.uploadId = id;
    }
    if (call.kind === 'part' && aborted.has(upload)) {
      // A part s3rver was still writing when its upload was aborted re-created the upload's
      // folder: remove it again, as S3 lists no aborted upload, whatever its late parts did.
      await removeUpload(call.bucket, String(ctx.query.uploadId));
    }
  };
  (server as unknown as { middleware: unknown[] }).middleware.unshift(middleware);
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
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
    calls,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    async openUploads(bucket: string) {
      return readdir(uploadsDir(bucket)).catch(() => [] as string[]);
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
