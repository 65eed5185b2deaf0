// Package augment is the augment stage: it turns each decoded image
// (messages.Image) into its n_views augmented views (messages.ViewGroup),
// with the ops and random policy of github.com/supflow/supflow/augment.
//
// The stage owns no transport: the bus adapter in cmd/supflow mounts Handle.
// It must not import bus or any other stage.
package augment
