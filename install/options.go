package install

import (
	"bufio"
	"bytes"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func applyOptions(force bool) metav1.PatchOptions {
	return metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
}

func deleteOptions() metav1.DeleteOptions {
	bg := metav1.DeletePropagationBackground
	return metav1.DeleteOptions{PropagationPolicy: &bg}
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }
