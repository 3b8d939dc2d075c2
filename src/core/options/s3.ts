import { usageError } from '../errors.ts';
import { DEFAULTS, MiB, nonEmpty, type Options } from '../options.ts';
import { baseUrl, choice, integer, refuseEmpty } from './checks.ts';

/** How S3 objects are reached and created. */
export interface S3Options {
  partSize: number;
  queueSize: number;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  region: string | undefined;
  sse: 'AES256' | 'aws:kms' | undefined;
  sseKmsKeyId: string | undefined;
  storageClass: string | undefined;
  tags: Record<string, string>;
}

const S3_MIN_PART = 5 * MiB;
const S3_MAX_PART = 5 * 1024 * MiB;

/**
 * The S3 settings alone, defaults filled: a command that only reads and writes one small object
 * (`unlock`), or a replay reading its inputs' first lines for their markets, needs no Spotify
 * credentials or outputs to get them.
 */
export function normalizeS3Options(
  options: Pick<
    Options,
    | 's3PartSize'
    | 's3QueueSize'
    | 's3Endpoint'
    | 's3ForcePathStyle'
    | 's3Region'
    | 's3Sse'
    | 's3SseKmsKeyId'
    | 's3StorageClass'
    | 's3Tags'
  >,
  env: NodeJS.ProcessEnv = process.env,
): S3Options {
  refuseEmpty([
    ['--s3-endpoint', options.s3Endpoint],
    ['--s3-region', options.s3Region],
    ['--s3-storage-class', options.s3StorageClass],
    ['--s3-sse-kms-key-id', options.s3SseKmsKeyId],
  ]);
  const endpoint = nonEmpty(options.s3Endpoint, env.AWS_ENDPOINT_URL_S3, env.AWS_ENDPOINT_URL);
  if (options.s3SseKmsKeyId && options.s3Sse !== 'aws:kms') {
    throw usageError('option --s3-sse-kms-key-id needs --s3-sse aws:kms');
  }
  return {
    partSize: integer(
      's3-part-size',
      options.s3PartSize,
      DEFAULTS.s3PartSize,
      S3_MIN_PART,
      S3_MAX_PART,
    ),
    queueSize: integer('s3-queue-size', options.s3QueueSize, DEFAULTS.s3QueueSize, 1, 64),
    endpoint: endpoint === undefined ? undefined : baseUrl('s3-endpoint', endpoint),
    forcePathStyle: options.s3ForcePathStyle ?? endpoint !== undefined,
    region: nonEmpty(options.s3Region),
    sse: choice('--s3-sse', options.s3Sse, ['AES256', 'aws:kms'] as const),
    sseKmsKeyId: nonEmpty(options.s3SseKmsKeyId),
    storageClass: nonEmpty(options.s3StorageClass),
    tags: options.s3Tags ?? {},
  };
}
