import { SpotifyBatchError } from '../core/errors.ts';
import { oneLine } from '../core/text.ts';

/** What the SDK's errors carry that the messages below read. */
interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The HTTP status S3 answered with, if it answered at all. */
export function s3Status(error: unknown): number | undefined {
  return (error as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** S3's error code (`NoSuchKey`, `AccessDenied` …), or the error's name. */
export function s3Code(error: unknown): string {
  const err = error as SdkError | undefined;
  return err?.Code ?? err?.name ?? '';
}

/** Where a failure happened, for its message. */
export interface S3Where {
  bucket: string;
  key: string;
  endpoint?: string | undefined;
  /** AWS_PROFILE, when set. */
  profile?: string | undefined;
  /** What the run was doing there, for the message. @default 'writing' */
  doing?: 'reading' | 'listing' | 'writing' | 'deleting' | undefined;
}

/** What a 403 says the credentials lack, by what the run was doing. */
const NEEDED = {
  writing: 's3:PutObject and s3:AbortMultipartUpload on it',
  // A HeadObject of a missing key is a 403, not a 404, without s3:ListBucket.
  reading: 's3:GetObject on it (and s3:ListBucket on its bucket)',
  deleting: 's3:DeleteObject on it',
  listing: 's3:ListBucket on its bucket',
} as const;

/** One clear line for the S3 failures users actually meet, naming bucket and key. */
export function s3Error(error: unknown, where: S3Where): SpotifyBatchError {
  if (error instanceof SpotifyBatchError) return error;
  const err = error as SdkError;
  const name = s3Code(error);
  const status = s3Status(error);
  const url = `s3://${where.bucket}/${where.key}`;
  const doing = where.doing ?? 'writing';
  const context = {
    bucket: where.bucket,
    key: where.key,
    ...(status === undefined ? {} : { status }),
  };
  const make = (code: 'ERR_S3' | 'ERR_CONFIG', message: string) =>
    new SpotifyBatchError(code, message, { cause: error, context });
  if (name === 'NoSuchBucket' || (name === 'NotFound' && status === 404)) {
    return make('ERR_S3', `S3 bucket ${where.bucket} does not exist (${doing} ${url})`);
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
    return make('ERR_S3', `S3 rejected the AWS credentials (${name}) ${doing} ${url}`);
  }
  if (name === 'AccessDenied' || name === 'Forbidden' || status === 403) {
    return make('ERR_S3', `access denied ${doing} ${url}: the credentials need ${NEEDED[doing]}`);
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
    return make(
      'ERR_S3',
      `S3 bucket ${where.bucket} is in another region: set AWS_REGION or --s3-region (${doing} ${url})`,
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
    return make('ERR_S3', `cannot reach ${endpoint} ${doing} ${url}: ${reason}`);
  }
  return make(
    'ERR_S3',
    `S3 error ${doing} ${url}: ${name ? `${name}: ` : ''}${oneLine(err.message ?? String(error))}`,
  );
}
