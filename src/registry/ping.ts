import { abandonBody, discardBody, readBody } from './body.ts';
import { answerError, RegistryError } from './errors.ts';
import { type HttpResponse, headerValue } from './http.ts';
import { redactUrl } from './redact.ts';

/** What Go's HTTPS servers (distribution, Harbor, Zot) answer to a plain-HTTP request. */
const HTTPS_SERVER_ANSWER = 'Client sent an HTTP request to an HTTPS server';

/** Bytes of a ping answer read to tell what answered. */
const PING_BODY_LIMIT = 4096;

/**
 * Consume the answer to `GET /v2/` and throw when it shows that no OCI registry answered: a 404
 * (the distribution spec's "does not implement the API": a web server at that address) is
 * `NOT_A_REGISTRY`; Go's "Client sent an HTTP request to an HTTPS server" is `HTTPS_REQUIRED`.
 * Any other answer is left to the caller (a 401 carries the challenge).
 */
export async function checkPing(response: HttpResponse): Promise<void> {
  if (response.status !== 404 && response.status !== 400) {
    await discardBody(response);
    return;
  }
  let text = '';
  try {
    text = (await readBody(response, 'GET', PING_BODY_LIMIT)).toString('utf8');
  } catch {
    abandonBody(response);
  }
  const https = httpsRequiredError(response, 'GET', text);
  if (https) throw https;
  if (response.status !== 404) return;
  const url = redactUrl(response.url);
  const type = headerValue(response.headers, 'content-type')?.split(';')[0]?.trim();
  throw new RegistryError({
    code: 'NOT_A_REGISTRY',
    status: 404,
    method: 'GET',
    url,
    retryable: false,
    message: `${response.url.host} is not an OCI registry (GET /v2/ answered 404${type ? ` ${type}` : ''})`,
    hint: 'check the host and port',
  });
}

/**
 * The error for an HTTPS server spoken to in plain HTTP, told by the text Go's HTTPS servers
 * answer with; undefined for any other answer.
 */
export function httpsRequiredError(
  response: HttpResponse,
  method: string,
  body: string,
): RegistryError | undefined {
  if (response.status !== 400 || !body.includes(HTTPS_SERVER_ANSWER)) return undefined;
  const says = ` answered 400 "${HTTPS_SERVER_ANSWER}": ${response.url.host} speaks HTTPS`;
  return answerError(response, method, 'HTTPS_REQUIRED', says, {
    retryable: false,
    hint: 'reach it over HTTPS, not plain HTTP',
  });
}
