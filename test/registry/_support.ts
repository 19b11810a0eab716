/** Shared set-up of the registry client tests: a real registry, a client for it, generated content. */

import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ExecutionContext, TestFn } from 'ava';
import { request } from 'undici';
import { OCI_CONFIG, OCI_LAYER, OCI_MANIFEST } from '../../src/oci/index.ts';
import { type Credential, CredentialStore } from '../../src/registry/auth/credentials.ts';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.ts';
import {
  type AuthMode,
  type SharedRegistry,
  type SharedRegistryOf,
  type StartRegistryOptions,
  sharedRegistry,
  startRegistry,
  type TestRegistry,
} from '../helpers/registry.ts';

/** The default test user's password: tests assert it never shows up in errors. */
export const ALICE_PASSWORD = 'alice-secret-pw';

/** A client whose only credentials are `credentials` for `host` (no docker config is read). */
export function clientFor(
  t: ExecutionContext,
  host: string,
  credential: Credential | undefined,
  options: RegistryClientOptions = {},
): RegistryClient {
  const credentials = new CredentialStore({
    env: { HOME: '/nonexistent-ociferry-test-home' },
    explicit: credential ? { [host]: credential } : {},
  });
  const client = new RegistryClient({
    credentials,
    retry: { baseDelayMs: 5, maxDelayMs: 50 },
    ...options,
  });
  t.teardown(() => client.close());
  return client;
}

/** `registry` and a client of it logged in as alice (anonymous when the registry has no auth). */
export function withClient<R extends SharedRegistry>(
  t: ExecutionContext,
  registry: R,
  clientOptions: RegistryClientOptions = {},
): { registry: R; client: RegistryClient } {
  const credential: Credential | undefined =
    registry.auth === 'none'
      ? undefined
      : { kind: 'basic', username: 'alice', password: ALICE_PASSWORD };
  return { registry, client: clientFor(t, registry.host, credential, clientOptions) };
}

/** A registry of the test's own in `auth` mode and a client logged in as alice. */
export async function registryWithClient(
  t: ExecutionContext,
  auth: AuthMode,
  options: Omit<StartRegistryOptions, 'auth'> = {},
  clientOptions: RegistryClientOptions = {},
): Promise<{ registry: TestRegistry; client: RegistryClient }> {
  return withClient(t, await startRegistry(t, { auth, ...options }), clientOptions);
}

/**
 * One registry per auth mode, shared by the tests of a file (see `sharedRegistry`), each started
 * by the first test that asks for it: call at the top level of a test file with its `test`.
 */
export function registriesPerAuth(test: TestFn): Record<AuthMode, SharedRegistryOf> {
  return {
    none: sharedRegistry(test),
    basic: sharedRegistry(test, { auth: 'basic' }),
    token: sharedRegistry(test, { auth: 'token' }),
  };
}

/** A refresh (identity) token for alice from a token-auth registry's token server (`offline_token=true`). */
export async function aliceRefreshToken(registry: SharedRegistry): Promise<string> {
  const realm = new URL(registry.tokenRealm ?? '');
  realm.searchParams.set('service', registry.tokenService ?? '');
  realm.searchParams.set('offline_token', 'true');
  const issued = await request(realm, {
    headers: {
      authorization: `Basic ${Buffer.from(`alice:${ALICE_PASSWORD}`).toString('base64')}`,
    },
  });
  const { refresh_token } = (await issued.body.json()) as { refresh_token?: string };
  if (!refresh_token) throw new Error('the token server issued no refresh token');
  return refresh_token;
}

/** `size` deterministic pseudo-random bytes for `seed` (AES-CTR keystream), as a fresh stream each call. */
export function generated(seed: string, size: number): () => Readable {
  return () => {
    const key = createHash('sha256').update(seed).digest().subarray(0, 16);
    const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
    const block = Buffer.alloc(64 * 1024);
    let left = size;
    return new Readable({
      read() {
        if (left === 0) {
          this.push(null);
          return;
        }
        const n = Math.min(left, block.length);
        left -= n;
        this.push(cipher.update(block.subarray(0, n)));
      },
    });
  };
}

/** sha256 digest of a stream's bytes. */
export async function streamDigest(stream: Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Digest and size of a {@link generated} blob. */
export function generatedDescriptor(
  seed: string,
  size: number,
): Promise<{ digest: string; size: number }> {
  return streamDigest(generated(seed, size)());
}

/** Bytes of a small blob and its descriptor. */
export function smallBlob(text: string): { bytes: Buffer; digest: string; size: number } {
  const bytes = Buffer.from(text);
  return {
    bytes,
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    size: bytes.length,
  };
}

/** Upload a config and one layer to `repo` and return an OCI manifest referencing them (not yet pushed). */
export async function imageParts(
  client: RegistryClient,
  registry: string,
  repo: string,
  seed: string,
  extra: Record<string, unknown> = {},
): Promise<{ manifest: Buffer; digest: string; layer: { digest: string; size: number } }> {
  const repository = client.repository(registry, repo);
  const config = smallBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = smallBlob(`layer of ${seed}`);
  for (const blob of [config, layer]) {
    await repository.uploadBlob(blob, () => Readable.from([blob.bytes]));
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.size }],
      ...extra,
    }),
  );
  return {
    manifest,
    digest: `sha256:${createHash('sha256').update(manifest).digest('hex')}`,
    layer,
  };
}
