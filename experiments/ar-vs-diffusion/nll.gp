# nll.gp — held-out nats/token vs training FLOPs, AR (exact) vs diffusion (ELBO bound).
set terminal png size 800,500
set output png
set datafile separator "\t"
# outside the plot: the curves can sit anywhere (a flat diffusion curve ran through it)
set key below
set logscale x
set xlabel "training FLOPs (6 x params x tokens)"
set ylabel "held-out nats/token"
set title "AR vs masked diffusion, same model and compute"
set grid
plot tsv using 2:3 skip 1 with linespoints title "AR: exact NLL", \
     tsv using 2:4 skip 1 with linespoints title "diffusion: ELBO (upper bound)"
