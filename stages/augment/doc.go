// Package augment is the augment stage: it turns each decoded image
// (messages.Image) into its n_views augmented views (messages.ViewGroup),
// with the ops and random policy of github.com/supflow/supflow/transform.
//
// Config is pipeline.yaml's augment section: workers plus the library's
// transform.Config inline; the config package embeds it as is.
//
// The stage owns no transport: the bus adapter in cmd/supflow mounts Handle.
// It imports transform, messages and config/field; it must not import bus,
// config or any other stage.
package augment
