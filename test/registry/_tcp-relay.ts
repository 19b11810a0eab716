/**
 * A TCP relay for tests, on 127.0.0.1: pipes every connection to a target port unchanged and
 * records, per connection, the first byte the client sent (0x16 starts a TLS handshake, a letter
 * an HTTP request), so a test can count handshakes and plain requests from the wire.
 */
import { once } from 'node:events';
import net from 'node:net';
import type { ExecutionContext } from 'ava';

/** A running relay. */
export interface TcpRelay {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  /** The first byte of each connection, in order of arrival (undefined: it sent nothing). */
  readonly firstBytes: (number | undefined)[];
}

/** Options of {@link startTcpRelay}. */
export interface TcpRelayOptions {
  /** Reset the connection of this index (0 is the first) as soon as it is accepted. */
  reset?: (index: number) => boolean;
}

/** Start a relay to `target` (`127.0.0.1:PORT`); stops when `t` ends. */
export async function startTcpRelay(
  t: ExecutionContext,
  target: string,
  options: TcpRelayOptions = {},
): Promise<TcpRelay> {
  const port = Number(target.split(':')[1]);
  const firstBytes: (number | undefined)[] = [];
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = net.createServer((client) => {
    const index = firstBytes.push(undefined) - 1;
    if (options.reset?.(index)) {
      client.resetAndDestroy();
      return;
    }
    client.once('data', (chunk: Buffer) => {
      firstBytes[index] = chunk[0];
    });
    const upstream = net.connect(port, '127.0.0.1');
    track(client);
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
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
  return { host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, firstBytes };
}
