/**
 * A TLS front for the plain-HTTP test registry: terminates TLS on a free 127.0.0.1 port with a
 * throwaway self-signed certificate (made with `openssl`) and pipes the bytes to the registry, so a
 * test can talk `https://` to the real registry.
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { ExecutionContext } from 'ava';
import { selfSignedCertificate } from '../helpers/certificate.ts';

/**
 * Start the TLS front for `target` (`127.0.0.1:PORT`); returns its `127.0.0.1:PORT`. Stops when `t`
 * ends. `sessions`, when given, gets one entry per connection: the bytes the client sent through
 * TLS (0 for a connection whose handshake carried no request, or failed).
 */
export async function startTlsFront(
  t: ExecutionContext,
  target: string,
  sessions?: { bytes: number }[],
): Promise<string> {
  const port = Number(target.split(':')[1]);
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = tls.createServer(await selfSignedCertificate(), (client) => {
    const session = byPort.get(client.remotePort ?? 0);
    client.on('data', (chunk: Buffer) => {
      if (session) session.bytes += chunk.length;
    });
    const upstream = net.connect(port, '127.0.0.1');
    track(client);
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  const byPort = new Map<number, { bytes: number }>();
  server.on('connection', (socket: net.Socket) => {
    const session = { bytes: 0 };
    sessions?.push(session);
    byPort.set(socket.remotePort ?? 0, session);
    const port = socket.remotePort ?? 0;
    socket.on('close', () => byPort.delete(port));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  );
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}
