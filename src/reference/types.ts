/** An image in a registry: `host[:port]/repository[:tag][@digest]`, normalised. */
export interface RegistryReference {
  readonly kind: 'registry';
  /** Lower-case `host[:port]`; `docker.io` for Docker Hub; IPv6 canonical in brackets (`[::1]:5000`). */
  readonly registry: string;
  /** Slash-separated path; Docker Hub single names get `library/` (`library/alpine`). */
  readonly repository: string;
  readonly tag?: string;
  /** A digest {@link parseDigest} accepts. */
  readonly digest?: string;
}

/** An image in an OCI image layout directory: `oci:DIR[:tag][@digest]`. */
export interface LayoutReference {
  readonly kind: 'layout';
  /** The directory exactly as given after `oci:`. */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: string;
}

/** Where an image lives: a registry repository or an OCI layout directory. */
export type Reference = RegistryReference | LayoutReference;
