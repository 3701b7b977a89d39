import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Duplex } from 'node:stream';
import type { GatewayOwnConfig } from '../config.js';

export type ConnectionHandler = (stream: Duplex | Socket, request?: IncomingMessage) => void;

export interface MqttUrls {
  /** mqtt://host:port (plain TCP). */
  mqtt: string;
  /** mqtts://host:port, when TLS is configured. */
  mqtts: string | null;
  /** ws://host:port/mqtt, when WebSocket is configured. */
  ws: string | null;
}

/** What devices connect to, whichever broker mode runs (`npx edgefl up` prints it). */
export interface MqttEndpoint {
  readonly urls: MqttUrls;
}

/** The broker's listeners: TCP, optional TLS (optionally mutual), optional WebSocket. Port 0 picks a free one. */
export class MqttListeners {
  private readonly servers: Array<Server | HttpServer> = [];
  private wss: WebSocketServer | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly config: GatewayOwnConfig['mqtt']) {}

  async open(handle: ConnectionHandler): Promise<MqttUrls> {
    const { host } = this.config;
    const display =
      host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    const tcp = createTcpServer((socket) => this.track(socket) && handle(socket));
    const mqtt = `mqtt://${display}:${await this.listen(tcp, this.config.port)}`;
    let mqtts: string | null = null;
    if (this.config.tls) {
      const tls = this.config.tls;
      const server = createTlsServer(
        {
          cert: readFileSync(tls.certPath),
          key: readFileSync(tls.keyPath),
          ...(tls.clientCaPath
            ? {
                ca: readFileSync(tls.clientCaPath),
                requestCert: true,
                rejectUnauthorized: tls.clientCert === 'required',
              }
            : {}),
          minVersion: 'TLSv1.2',
        },
        (socket) => this.track(socket) && handle(socket),
      );
      mqtts = `mqtts://${display}:${await this.listen(server, tls.port)}`;
    }
    let ws: string | null = null;
    if (this.config.wsPort !== null) {
      const http = createHttpServer((_req, res) => {
        res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n');
      });
      http.on('connection', (socket) => this.track(socket));
      this.wss = new WebSocketServer({ server: http, path: '/mqtt', maxPayload: 16 * 1024 * 1024 });
      this.wss.on('connection', (socket, request) => handle(createWebSocketStream(socket), request));
      ws = `ws://${display}:${await this.listen(http, this.config.wsPort)}/mqtt`;
    }
    return { mqtt, mqtts, ws };
  }

  /** Stops accepting connections; the connections already open stay (the broker closes them after the drain). */
  stopAccepting(): void {
    this.wss?.close();
    // close() stops listening at once; its callback would wait for every open connection, which is not wanted here
    for (const server of this.servers) server.close();
  }

  /** Destroys whatever sockets are left (after the broker closed its clients). */
  destroyRemaining(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private track(socket: Socket): true {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    return true;
  }

  private listen(server: Server | HttpServer, port: number): Promise<number> {
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }
}
