package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gatecheck/gatecheck/migrate"
)

func init() { subcommands = append(subcommands, newMigrateCmd) }

type migrateFlags struct {
	files                 []string
	kubeconfig, context   string
	namespace             string
	allNamespaces         bool
	gatewayClass          string
	gatewayName           string
	ingressClass          string
	output                string
	continueOnUnsupported bool
}

func newMigrateCmd(g *globalOptions) *cobra.Command {
	f := &migrateFlags{}
	cmd := &cobra.Command{
		Use:   "migrate (-f FILE... | --kubeconfig FILE [-n NS | -A]) --gateway-class CLASS",
		Short: "Translate Ingress objects (and ingress-nginx annotations) into a Gateway and HTTPRoutes",
		Long: `migrate reads networking.k8s.io/v1 Ingress objects from files (-f, globs, - for stdin) or
from a cluster and writes, as YAML, one Gateway per namespace (an HTTP listener on 80, an HTTPS
listener on 443 per TLS host) and the HTTPRoutes that should behave like the Ingresses:
Prefix, Exact and ImplementationSpecific paths, default backends, TLS, and the ingress-nginx
annotations rewrite-target, ssl-redirect, force-ssl-redirect, permanent-redirect,
temporal-redirect, canary (canary-weight, canary-weight-total, canary-by-header[-value|-pattern]),
backend-protocol and use-regex.

Everything the output cannot express is listed on stderr, one line per Ingress and field or
annotation, and at the top of the output. An unsupported annotation or field makes migrate
exit 1 without writing anything, unless --continue-on-unsupported. Exit 2: bad flags or input.

Check the result behaves like the Ingresses with 'gatecheck probe migration'.`,
		Example: `  gatecheck migrate -f ingresses.yaml --gateway-class gatecheck-reference > gateway.yaml
  kubectl get ingress -A -o yaml | gatecheck migrate -f - --gateway-class eg -o gateway.yaml
  gatecheck migrate --kubeconfig ~/.kube/config -n shop --gateway-class eg --continue-on-unsupported`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMigrate(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "filename", "f", nil, "file, glob or - (stdin) with Ingress (and Service) objects; repeatable")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "read Ingresses from this cluster instead of files")
	fl.StringVar(&f.context, "context", "", "kubeconfig context (default: the current one)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace to read from the cluster (default: the context's, else default)")
	fl.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "read every namespace from the cluster")
	fl.StringVar(&f.gatewayClass, "gateway-class", "", "GatewayClass of the Gateways written (required)")
	fl.StringVar(&f.gatewayName, "gateway-name", "ingress", "name of the Gateway written in each namespace")
	fl.StringVar(&f.ingressClass, "ingress-class", "", "migrate only Ingresses of this class")
	fl.StringVarP(&f.output, "output", "o", "", "write the YAML here instead of stdout")
	fl.BoolVar(&f.continueOnUnsupported, "continue-on-unsupported", false, "write the output and exit 0 even when something cannot be expressed")
	return cmd
}

func runMigrate(cmd *cobra.Command, f *migrateFlags) error {
	stderr := cmd.ErrOrStderr()
	if f.gatewayClass == "" {
		return withExitCode(2, fmt.Errorf("--gateway-class is required"))
	}
	if len(f.files) > 0 && f.kubeconfig != "" {
		return withExitCode(2, fmt.Errorf("-f and --kubeconfig are exclusive: read Ingresses from files or from a cluster"))
	}
	if len(f.files) == 0 && f.kubeconfig == "" {
		return withExitCode(2, fmt.Errorf("no input: give -f FILE (or - for stdin) or --kubeconfig"))
	}
	if (f.namespace != "" || f.allNamespaces || f.context != "") && f.kubeconfig == "" {
		return withExitCode(2, fmt.Errorf("--namespace, --all-namespaces and --context need --kubeconfig"))
	}
	if f.namespace != "" && f.allNamespaces {
		return withExitCode(2, fmt.Errorf("--namespace and --all-namespaces are exclusive"))
	}
	var objs migrate.Objects
	if f.kubeconfig != "" {
		if err := readCluster(cmd.Context(), f, &objs, stderr); err != nil {
			return withExitCode(2, err)
		}
	} else if err := readFiles(cmd.InOrStdin(), f.files, &objs); err != nil {
		return withExitCode(2, err)
	}
	for _, s := range objs.Skipped {
		fmt.Fprintf(stderr, "skipped %s (not an Ingress or Service)\n", s)
	}
	if len(objs.Ingresses) == 0 {
		return withExitCode(2, fmt.Errorf("no networking.k8s.io/v1 Ingress found in the input"))
	}
	res, err := migrate.Convert(objs.Ingresses, migrate.Options{
		GatewayClass: f.gatewayClass, GatewayName: f.gatewayName, IngressClass: f.ingressClass, Services: objs.Services,
	})
	if err != nil {
		return withExitCode(2, err)
	}
	for _, fd := range res.Findings {
		fmt.Fprintln(stderr, fd.String())
	}
	unsupported := len(res.Unsupported())
	fmt.Fprintf(stderr, "summary: %d Ingress(es) read, %d migrated into %d Gateway(s) and %d HTTPRoute(s); %d unsupported, %d note(s)\n",
		len(objs.Ingresses), res.Converted, len(res.Gateways), len(res.HTTPRoutes), unsupported, len(res.Findings)-unsupported)
	if unsupported > 0 && !f.continueOnUnsupported {
		return withExitCode(1, fmt.Errorf("%d thing(s) listed above as unsupported cannot be expressed in the Gateway API objects; nothing written (--continue-on-unsupported writes them without)", unsupported))
	}
	out, err := migrate.Marshal(res)
	if err != nil {
		return withExitCode(2, err)
	}
	if f.output == "" {
		_, err = cmd.OutOrStdout().Write(out)
		return err
	}
	if err := os.WriteFile(f.output, out, 0o644); err != nil {
		return withExitCode(2, err)
	}
	fmt.Fprintf(stderr, "wrote %s\n", f.output)
	return nil
}

func readFiles(stdin io.Reader, specs []string, objs *migrate.Objects) error {
	for _, spec := range specs {
		if spec == "-" {
			if err := migrate.Decode(stdin, "stdin", objs); err != nil {
				return err
			}
			continue
		}
		paths, err := filepath.Glob(spec)
		if err != nil {
			return fmt.Errorf("-f %q: %w", spec, err)
		}
		if len(paths) == 0 {
			return fmt.Errorf("-f %q: no such file", spec)
		}
		for _, p := range paths {
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				more, _ := filepath.Glob(filepath.Join(p, "*.y*ml"))
				jsons, _ := filepath.Glob(filepath.Join(p, "*.json"))
				if len(more)+len(jsons) == 0 {
					return fmt.Errorf("-f %q: directory %s has no .yaml, .yml or .json files", spec, p)
				}
				if err := readFiles(stdin, append(more, jsons...), objs); err != nil {
					return err
				}
				continue
			}
			fh, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("-f %q: %w", spec, err)
			}
			err = migrate.Decode(fh, p, objs)
			fh.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func readCluster(ctx context.Context, f *migrateFlags, objs *migrate.Objects, progress io.Writer) error {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: f.kubeconfig}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fmt.Errorf("--kubeconfig %s: %w", f.kubeconfig, err)
	}
	ns := f.namespace
	if f.allNamespaces {
		ns = metav1.NamespaceAll
	} else if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	where := "namespace " + ns
	if ns == "" {
		where = "all namespaces"
	}
	fmt.Fprintf(progress, "reading Ingresses from %s (%s)\n", cfg.Host, where)
	ings, err := cs.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Ingresses in %s: %w", where, err)
	}
	svcNS := map[string]bool{}
	for i := range ings.Items {
		ing := &ings.Items[i]
		objs.Ingresses = append(objs.Ingresses, ing)
		svcNS[ing.Namespace] = namedPort(ing) || svcNS[ing.Namespace]
	}
	for n, need := range svcNS {
		if !need {
			continue
		}
		svcs, err := cs.CoreV1().Services(n).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list Services in namespace %s (to resolve named ports): %w", n, err)
		}
		for i := range svcs.Items {
			objs.Services = append(objs.Services, &svcs.Items[i])
		}
	}
	fmt.Fprintf(progress, "read %d Ingress(es)\n", len(objs.Ingresses))
	return nil
}

func namedPort(ing *networkingv1.Ingress) bool {
	var bs []networkingv1.IngressBackend
	if ing.Spec.DefaultBackend != nil {
		bs = append(bs, *ing.Spec.DefaultBackend)
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP != nil {
			for _, p := range r.HTTP.Paths {
				bs = append(bs, p.Backend)
			}
		}
	}
	for _, b := range bs {
		if b.Service != nil && b.Service.Port.Name != "" {
			return true
		}
	}
	return false
}
